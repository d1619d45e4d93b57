// The group-level server faults that the ZooKeeper and etcd packages' group fault tests share: two members of a
// FaultGroup while messages flow, and the backend's server frozen (SIGSTOP) shorter or longer than the session
// timeout or lease TTL, or restarted with its data kept. Each backend's spec passes how to inject the fault on its
// private server and checks what only its backend promises (sessions, leases, session events) through hooks.
import { drainGroup, type FaultGroup, wallClock } from './fault-group';
import type { ContinuousProducer } from './group-harness';
import { sleep, waitFor } from './wait';

/** How a spec injects faults on its private server; it also notes what to undo if a case fails half-way. */
export interface ServerFaults {
  /** Freezes the server (SIGSTOP): it keeps its sockets but answers nothing. */
  freeze(): void | Promise<void>;
  /** Undoes `freeze`. */
  resume(): void | Promise<void>;
  /** Stops the server and starts it again on the same ports and data, resolving once it is back. */
  restart(): Promise<void>;
}

/** What every server-fault case needs: a fresh group and producer (nothing started yet), and the server's faults. */
export interface ServerFaultCase {
  readonly group: FaultGroup;
  readonly producer: ContinuousProducer;
  readonly server: ServerFaults;
}

/**
 * The backend's own checks of a case: called just before the fault, it returns what to check once the group is
 * back (still inside the case, before the members close), given when the fault began (a wallClock()).
 */
export type BackendWatch = () => (faultAt: number) => void;

/** Adds members a and b, waits for a stable allocation, and lets messages flow for a moment. */
async function addPair(group: FaultGroup): Promise<void> {
  await group.add('a');
  await group.add('b');
  await group.stable();
  await sleep(300);
}

/** What {@link expectShortFreezeUnnoticed} needs besides the group. */
export interface ShortFreezeCase extends ServerFaultCase {
  /** How long the server stays frozen, ms: shorter than the session timeout or lease TTL. */
  readonly frozenMs: number;
  /** How long the group runs after the resume before it is looked at, ms. */
  readonly settleMs: number;
  readonly watch?: BackendWatch;
}

/**
 * Two members while the server is frozen for less than a session: afterwards the same members on the same
 * generation own every partition, none lost its session or stayed fenced, and nothing is lost, handled twice or
 * owned twice at once.
 */
export async function expectShortFreezeUnnoticed(c: ShortFreezeCase): Promise<void> {
  const { group, producer } = c;
  await producer.start();
  try {
    await addPair(group);
    const generation = group.generation;
    const ids = [...group.members.values()].map((m) => m.consumer.memberId);
    const check = c.watch?.();
    const frozenAt = wallClock();
    await c.server.freeze();
    await sleep(c.frozenMs);
    await c.server.resume();
    await sleep(c.settleMs);
    expect(group.isStable()).toBe(true);
    expect(group.generation).toBe(generation);
    expect([...group.members.values()].map((m) => m.consumer.memberId)).toEqual(ids);
    check?.(frozenAt);
    for (const name of ['a', 'b']) {
      expect(group.eventsOf(name, 'lost')).toEqual([]);
      // A member may fence itself for a moment (its clock is stricter than the session or lease), but never stays
      // fenced.
      expect(group.eventsOf(name, 'unfenced').length).toBe(group.eventsOf(name, 'fenced').length);
    }
  } finally {
    await drainGroup(group, producer);
  }
  expect(producer.total).toBeGreaterThan(300);
  expect(group.log.lost(producer.produced)).toEqual([]);
  expect(group.log.duplicates()).toEqual([]);
  expect(group.log.overlaps()).toEqual([]);
  expect(group.unexpectedErrors()).toEqual([]);
}

/** What {@link expectLongFreezeRejoins} needs besides the group: how the backend gives up and comes back. */
export interface LongFreezeCase extends ServerFaultCase {
  /** Called just before the freeze: note what the later hooks compare (sessions, leases, session events). */
  before?(): void;
  /** With the server frozen since `frozenAt`: waits until every member has given up its session (bounded). */
  whileFrozen(frozenAt: number): Promise<void>;
  /** After the resume at `resumedAt`: waits until every member is back and the group stable again (bounded). */
  untilBack(resumedAt: number): Promise<void>;
  /** The backend's checks of each member once the group is closed (`index` 0 for a, 1 for b). */
  expectMember?(name: string, index: number): void;
  /** The backend's checks of the group once it is closed, given the generation before the freeze. */
  expectGroup?(generationBefore: number): void | Promise<void>;
}

/**
 * Two members while the server is frozen for longer than a session: each fences itself while its session (and so
 * its claims) is still certainly alive, gives it up, and rejoins as a new member after the resume; nothing is lost,
 * no partition ever has two owners, and only what a member handled after its last commit is handled again.
 */
export async function expectLongFreezeRejoins(c: LongFreezeCase): Promise<void> {
  const { group, producer } = c;
  await producer.start();
  let generation = 0;
  let frozenAt = 0;
  try {
    await addPair(group);
    generation = group.generation;
    c.before?.();
    frozenAt = wallClock();
    await c.server.freeze();
    await c.whileFrozen(frozenAt);
    const resumedAt = wallClock();
    await c.server.resume();
    await c.untilBack(resumedAt);
    await sleep(500);
  } finally {
    await drainGroup(group, producer);
  }
  for (const [i, name] of ['a', 'b'].entries()) {
    const member = group.members.get(name)!;
    const [fenced] = group.eventsOf(name, 'fenced');
    expect(fenced).toBeDefined();
    expect(fenced!.margin).toBeGreaterThan(0);
    c.expectMember?.(name, i);
    expect(member.memberIds).toHaveLength(2);
    expect(member.memberIds[1]).not.toBe(member.memberIds[0]);
  }
  await c.expectGroup?.(generation);
  expect(group.log.lost(producer.produced)).toEqual([]);
  expect(group.describeOverlaps(frozenAt)).toEqual([]);
  expect(group.unexplainedDuplicates()).toEqual([]);
  expect(group.unexpectedErrors()).toEqual([]);
}

/** What {@link expectRestartRecovers} needs besides the group. */
export interface RestartCase extends ServerFaultCase {
  readonly watch?: BackendWatch;
  /** The backend's checks once the group is closed. */
  expectGroup?(): void;
}

/**
 * Two members while the server is restarted with its data kept: they are in contact again, a stable allocation
 * follows and messages produced after the restart are handled, with nothing lost, no partition owned twice at once,
 * and only what a member handled after its last commit handled again.
 */
export async function expectRestartRecovers(c: RestartCase): Promise<void> {
  const { group, producer } = c;
  await producer.start();
  let producedBefore = 0;
  try {
    await addPair(group);
    const check = c.watch?.();
    const stoppedAt = wallClock();
    await c.server.restart();
    producedBefore = producer.total;
    await waitFor(
      'contact again',
      () => [...group.members.values()].every((m) => m.backend.state === 'connected'),
      15_000,
    );
    await waitFor('a stable allocation again', () => group.isStable(), 15_000);
    // Messages produced after the restart are handled: consumption goes on.
    const handledBefore = group.log.count;
    await waitFor('consumption after the restart', () => group.log.count > handledBefore + 100, 10_000);
    check?.(stoppedAt);
  } finally {
    await drainGroup(group, producer);
  }
  expect(producer.total).toBeGreaterThan(producedBefore);
  c.expectGroup?.();
  expect(group.log.lost(producer.produced)).toEqual([]);
  expect(group.log.overlaps()).toEqual([]);
  expect(group.unexplainedDuplicates()).toEqual([]);
  expect(group.unexpectedErrors()).toEqual([]);
}
