// GroupedConsumer: an invalid strategy result, self-fencing, kiel's pull style with autocommit, a group id
// shared with a native Kafka consumer group, and SIGTERM in a child process.
import { spawn } from 'node:child_process';
import { naive, type Strategy } from '@kiel/allocators';
import {
  GroupedConsumer,
  MemoryBackend,
  MemoryStore,
  type GroupedConsumerOptions,
  type KielError,
  type Message,
  type RecordName,
  type RecordVersion,
} from '../src';
import {
  committedOffsets,
  gate,
  kafka,
  KAFKA_BROKERS,
  produce,
  sleep,
  topics,
  uniqueName,
  waitFor,
} from '@kiel/test-kit';

const t = topics();
afterAll(() => t.cleanup());

function member(store: MemoryStore, group: string, topic: string, extra: Partial<GroupedConsumerOptions<number>> = {}) {
  return new GroupedConsumer<number>({
    brokers: KAFKA_BROKERS,
    group,
    topics: [topic],
    backend: new MemoryBackend({ store, sessionTimeout: 3000 }),
    maxWaitTime: 100,
    ...extra,
  });
}

/**
 * A first member on a rigged in-memory backend (`Rigged` overrides its calls: a slow or failing backend made to
 * order; claims behave as a real backend's from the consumer's side). Its strategy is naive, but with two members
 * `partition` goes to the other one: the ids are random, so naive alone would decide by chance.
 */
function riggedMember(
  store: MemoryStore,
  group: string,
  topic: string,
  partition: string,
  Rigged: new (options: ConstructorParameters<typeof MemoryBackend>[0]) => MemoryBackend,
) {
  const index = Number(partition.slice(partition.lastIndexOf(':') + 1));
  const toTheOther: Strategy = (members, partitions) => {
    const assignment = naive(members, partitions);
    const [a, b] = members;
    if (members.length !== 2 || !(assignment[first.memberId]?.[topic] ?? []).includes(index)) return assignment;
    return { [a!]: assignment[b!]!, [b!]: assignment[a!]! };
  };
  const first = new GroupedConsumer<number>({
    brokers: KAFKA_BROKERS,
    group,
    topics: [topic],
    backend: new Rigged({ store, sessionTimeout: 3000 }),
    strategy: toTheOther,
    maxWaitTime: 100,
  });
  return first;
}

/** A member whose first claim of `held` stays in flight until `letGo()`; with two members `held` is the other's. */
function heldClaimMember(store: MemoryStore, group: string, topic: string, held: string) {
  const claim = gate();
  let inFlight = false;
  class HeldClaim extends MemoryBackend {
    override async claim(g: string, partition: string, value: string): Promise<boolean> {
      if (partition === held && !inFlight) {
        inFlight = true;
        await claim.wait;
      }
      return super.claim(g, partition, value);
    }
  }
  return { first: riggedMember(store, group, topic, held, HeldClaim), inFlight: () => inFlight, letGo: claim.open };
}

/**
 * Two members on a 6-partition topic, where the first's claim of partition 5 is still in flight when the second
 * joins and gets that partition. `letGo()` lets the claim go on; `close()` closes both.
 */
async function splitWithClaimOut(name: string) {
  const topic = await t.create(name, 6);
  const store = new MemoryStore();
  const group = uniqueName(`kiel-${name}`);
  const held = `${topic}:5`;
  const { first, inFlight, letGo } = heldClaimMember(store, group, topic, held);
  const second = member(store, group, topic);
  const runs = [first.run({ eachMessage: async () => undefined })];
  const close = async () => {
    letGo();
    await Promise.all([first.close(), second.close()]);
    await Promise.all(runs);
  };
  try {
    await waitFor('the claim of the last partition in flight', () => inFlight() && first.assignment.length === 5);
    runs.push(second.run({ eachMessage: async () => undefined }));
    await waitFor('the second member owning its half', () => second.assignment.length === 3);
    expect(second.assignment).toContain(held);
  } catch (err) {
    await close();
    throw err;
  }
  return { first, second, held, letGo, close };
}

/**
 * An in-memory backend class whose next write of the group's partition set fails once `control.armed` is set, as a
 * write to a server that went away would.
 */
function failingSetWrites() {
  const control = { armed: false, failed: 0 };
  class FailingSetWrite extends MemoryBackend {
    override async writeRecord(g: string, name: RecordName, value: string, expected: RecordVersion | null) {
      if (name === 'partitions' && control.armed) {
        control.armed = false;
        control.failed++;
        throw new Error('connection lost');
      }
      return super.writeRecord(g, name, value, expected);
    }
  }
  return { FailingSetWrite, control };
}

describe('GroupedConsumer', () => {
  it('keeps the previous allocation and reports ERR_INVALID_ALLOCATION when the strategy returns an invalid one', async () => {
    const topic = await t.create('invalid-alloc', 6);
    const group = uniqueName('kiel-invalid');
    const store = new MemoryStore();
    // Valid for up to two members; with three it gives partition 0 twice.
    const flaky: Strategy = (members, partitions) => {
      const assignment = naive(members, partitions);
      if (members.length < 3) return assignment;
      return { ...assignment, [members[2]!]: { [topic]: [0] } };
    };
    const errors: KielError[] = [];
    const a = member(store, group, topic, { strategy: flaky });
    a.on('error', (e) => errors.push(e));
    const b = member(store, group, topic, { strategy: flaky });
    await a.connect();
    await b.connect();
    await waitFor(
      'two members owning all 6',
      () => a.assignment.length + b.assignment.length === 6 && a.assignment.length > 0 && b.assignment.length > 0,
    );
    const generation = a.generation;
    const c = member(store, group, topic, { strategy: flaky });
    await c.connect();
    await waitFor('the leader to report the invalid allocation', () => errors.length > 0);
    expect(errors[0]).toMatchObject({ code: 'ERR_INVALID_ALLOCATION' });
    expect(errors[0]!.message).toMatch(new RegExp(`${topic}:0`));
    await sleep(300);
    expect(a.generation).toBe(generation);
    expect(c.assignment).toEqual([]);
    expect(a.assignment.length + b.assignment.length).toBe(6);
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it('fences itself when cut off from the backend, hands out nothing meanwhile, and resumes when contact returns', async () => {
    const topic = await t.create('fence', 2);
    const store = new MemoryStore();
    const consumer = member(store, uniqueName('kiel-fence'), topic, { fencingTimeout: 600 });
    const values: number[] = [];
    const events: string[] = [];
    consumer.on('fenced', () => events.push('fenced'));
    consumer.on('unfenced', () => events.push('unfenced'));
    const running = consumer.run({ eachMessage: async (m: Message<number>) => void values.push(m.value) });
    await waitFor('both partitions owned', () => consumer.assignment.length === 2);
    await produce(topic, [{ value: '1' }, { value: '2' }]);
    await waitFor('the first messages', () => values.length === 2);
    const backend = (consumer as unknown as { allocator: { backend: MemoryBackend } }).allocator.backend;
    store.cutOffSession(backend.sessionId!);
    await waitFor('the member to fence itself', () => events.includes('fenced'), 5000);
    await produce(topic, [{ value: '3' }, { value: '4' }]);
    await sleep(700);
    expect(values.sort()).toEqual([1, 2]);
    store.restoreSession(backend.sessionId!);
    await waitFor('processing to resume', () => values.length === 4, 10_000);
    expect(events).toEqual(['fenced', 'unfenced']);
    expect(values.sort()).toEqual([1, 2, 3, 4]);
    await consumer.close();
    await running;
  });

  it('commits nothing while fenced: a member that lost contact may have lost its partitions to another', async () => {
    // The chaos soak caught it: a member frozen past its session woke, and its pending commit went out before its
    // fencing clock had run, moving the group's offset back under the partition's new owner.
    const topic = await t.create('fence-commit', 2);
    const store = new MemoryStore();
    const group = uniqueName('kiel-fence-commit');
    const consumer = member(store, group, topic, { fencingTimeout: 600, autocommit: false });
    const commits: string[] = [];
    consumer.on('commit', ({ offsets }) => commits.push(...offsets.map((o) => `${o.partition}@${o.offset}`)));
    const events: string[] = [];
    consumer.on('fenced', () => events.push('fenced'));
    consumer.on('unfenced', () => events.push('unfenced'));
    let handled = 0;
    const running = consumer.run({ eachMessage: async () => void handled++ });
    await waitFor('both partitions owned', () => consumer.assignment.length === 2);
    await produce(topic, [
      { value: '1', partition: 0 },
      { value: '2', partition: 1 },
    ]);
    await waitFor('both messages handled', () => handled === 2);
    const backend = (consumer as unknown as { allocator: { backend: MemoryBackend } }).allocator.backend;
    store.cutOffSession(backend.sessionId!);
    await waitFor('the member to fence itself', () => events.includes('fenced'), 5000);
    await consumer.commitOffsets();
    expect(commits).toEqual([]);
    expect(await committedOffsets(group, topic, 2)).toEqual([-1, -1]);
    // Contact back, the session still alive: what was handled is committed then.
    store.restoreSession(backend.sessionId!);
    await waitFor('contact back', () => events.includes('unfenced'), 10_000);
    await consumer.commitOffsets();
    expect(commits.sort()).toEqual(['0@1', '1@1']);
    expect(await committedOffsets(group, topic, 2)).toEqual([1, 1]);
    await consumer.close();
    await running;
  });

  it('reports the handoff of a graceful close with the duration of that handoff, not the time since the last one', async () => {
    const topic = await t.create('close-rebalance', 2);
    const consumer = member(new MemoryStore(), uniqueName('kiel-close-rebalance'), topic);
    const rebalances: Array<{ assigned: string[]; revoked: string[]; durationMs: number }> = [];
    consumer.on('rebalance', (info) => rebalances.push(info));
    const running = consumer.run({ eachMessage: async () => undefined });
    await waitFor('both partitions owned', () => consumer.assignment.length === 2);
    // Every generation applied is reported (the first, before the partition set is known, assigns nothing).
    await waitFor('the handoff of both partitions reported', () => rebalances.some((r) => r.assigned.length === 2));
    await sleep(1_000);
    const before = rebalances.length;
    const started = performance.now();
    await consumer.close();
    const closeMs = performance.now() - started;
    await running;
    // The close reports exactly one handoff: the hand-back, timed from the close.
    expect(rebalances.length).toBe(before + 1);
    expect(rebalances[before]!.revoked).toEqual([`${topic}:0`, `${topic}:1`]);
    expect(rebalances[before]!.durationMs).toBeLessThanOrEqual(closeMs);
  });

  it('reports every generation it applies, also one that leaves its own partitions as they were', async () => {
    const topic = await t.create('generation-events', 1);
    const store = new MemoryStore();
    const group = uniqueName('kiel-generation-events');
    const members = [member(store, group, topic, { strategy: 'sticky' })];
    const events: Array<{ generation: number; assigned: string[]; revoked: string[] }> = [];
    members[0]!.on('rebalance', ({ generation, assigned, revoked }) => events.push({ generation, assigned, revoked }));
    const runs = [members[0]!.run({ eachMessage: async () => undefined })];
    try {
      await waitFor('the only partition owned', () => members[0]!.assignment.length === 1);
      await waitFor('its handoff reported', () => events.some((e) => e.assigned.length === 1));
      // A second member gets nothing of a one-partition topic (sticky keeps it where it is): a new generation in
      // which nothing changes for the first member.
      members.push(member(store, group, topic, { strategy: 'sticky' }));
      runs.push(members[1]!.run({ eachMessage: async () => undefined }));
      const before = members[0]!.generation;
      await waitFor('a new generation', () => members[0]!.generation > before && members[1]!.generation > before);
      await waitFor('that generation reported', () => events.at(-1)!.generation === members[0]!.generation);
      expect(events.at(-1)).toEqual({ generation: members[0]!.generation, assigned: [], revoked: [] });
      expect(members[0]!.assignment).toEqual([`${topic}:0`]);
      // One event per generation: never the same generation twice.
      expect(new Set(events.map((e) => e.generation)).size).toBe(events.length);
    } finally {
      await Promise.all(members.map((m) => m.close()));
      await Promise.all(runs);
    }
  });

  it('finishes a handoff when a claim still in flight for a partition it just lost comes back refused', async () => {
    const { first, second, held, letGo, close } = await splitWithClaimOut('cancelled-claim');
    const events: Array<{ generation: number; assigned: string[] }> = [];
    first.on('rebalance', ({ generation, assigned }) => events.push({ generation, assigned }));
    try {
      letGo();
      // The refused claim must not keep the first member's handoff open.
      await waitFor('the first member reporting the new generation', () =>
        events.some((e) => e.generation === first.generation && first.generation === second.generation),
      );
      expect(first.assignment).toHaveLength(3);
      expect(first.assignment).not.toContain(held);
    } finally {
      await close();
    }
  });

  it('claims a partition again when it comes back while the claim cancelled for losing it is still in flight', async () => {
    const { first, second, held, letGo, close } = await splitWithClaimOut('returned-claim');
    try {
      const split = first.generation;
      // The second member leaves: every partition is the first's again, while its first claim is still out.
      await second.close();
      await waitFor(
        'the first member taking back what it can',
        () => first.generation > split && first.assignment.length === 5,
      );
      letGo();
      await waitFor('the first member owning every partition', () => first.assignment.length === 6);
      expect(first.assignment).toContain(held);
    } finally {
      await close();
    }
  });

  it('reports a generation only once it owns exactly its target, not when a stale claim ends mid-handoff', async () => {
    const topic = await t.create('premature-report', 6);
    const store = new MemoryStore();
    const group = uniqueName('kiel-premature-report');
    const held = `${topic}:5`;
    const gates = { claim: gate(), release: gate() };
    let claimOut = false;
    let releaseOut = false;
    // The first claim of partition 5 stays out, and so does the first release of partition 1.
    class Slow extends MemoryBackend {
      override async claim(g: string, partition: string, value: string): Promise<boolean> {
        if (partition === held && !claimOut) {
          claimOut = true;
          await gates.claim.wait;
        }
        return super.claim(g, partition, value);
      }
      override async release(g: string, partition: string): Promise<void> {
        if (partition === `${topic}:1` && !releaseOut) {
          releaseOut = true;
          await gates.release.wait;
        }
        return super.release(g, partition);
      }
    }
    const first = riggedMember(store, group, topic, held, Slow);
    const second = member(store, group, topic);
    const reports: Array<{ generation: number; owned: string[] }> = [];
    first.on('rebalance', ({ generation }) => reports.push({ generation, owned: first.assignment }));
    const runs = [first.run({ eachMessage: async () => undefined })];
    try {
      await waitFor('the claim of partition 5 out', () => claimOut && first.assignment.length === 5);
      runs.push(second.run({ eachMessage: async () => undefined }));
      // Mid-handoff: partition 1 is being released; then the stale claim of 5 ends (refused, the second has it).
      await waitFor('the release of partition 1 out', () => releaseOut);
      await waitFor('the second member owning partition 5', () => second.assignment.includes(held));
      gates.claim.open();
      await sleep(200);
      gates.release.open();
      await waitFor('the first member at its target', () => first.assignment.length === 3);
      await waitFor('the generation reported', () => reports.at(-1)?.generation === first.generation);
      const reported = reports.filter((r) => r.generation === first.generation);
      expect(reported).toEqual([{ generation: first.generation, owned: first.assignment }]);
    } finally {
      gates.claim.open();
      gates.release.open();
      await Promise.all([first.close(), second.close()]);
      await Promise.all(runs);
    }
  });

  it('releases again a claim whose release failed, so that the next owner is not kept waiting', async () => {
    const topic = await t.create('failed-release', 6);
    const store = new MemoryStore();
    const group = uniqueName('kiel-failed-release');
    const moved = `${topic}:5`;
    let failures = 0;
    // The first release of that partition fails as a release to an unreachable server would; the session lives on.
    class FailingRelease extends MemoryBackend {
      override async release(g: string, partition: string): Promise<void> {
        if (partition === moved && failures++ === 0) throw new Error('connection lost');
        return super.release(g, partition);
      }
    }
    const first = riggedMember(store, group, topic, moved, FailingRelease);
    const errors: KielError[] = [];
    first.on('error', (e) => errors.push(e));
    const second = member(store, group, topic);
    const runs = [first.run({ eachMessage: async () => undefined })];
    try {
      await waitFor('the first member owning every partition', () => first.assignment.length === 6);
      runs.push(second.run({ eachMessage: async () => undefined }));
      await waitFor('the second member owning its half', () => second.assignment.length === 3);
      expect(second.assignment).toContain(moved);
      expect(failures).toBe(2);
      expect(errors).toEqual([expect.objectContaining({ code: 'ERR_BACKEND', retriable: true })]);
      expect(errors[0]!.message).toContain(`releasing ${moved} failed: connection lost`);
      expect(first.assignment).toHaveLength(3);
    } finally {
      await Promise.all([first.close(), second.close()]);
      await Promise.all(runs);
    }
  });

  it('leaves again when connect fails after joining, so that a retried connect joins as one member', async () => {
    const topic = await t.create('connect-retry', 4);
    const store = new MemoryStore();
    const group = uniqueName('kiel-connect-retry');
    // The first write of the group's partition set fails.
    const { FailingSetWrite, control } = failingSetWrites();
    control.armed = true;
    const backend = new FailingSetWrite({ store, sessionTimeout: 3000 });
    const consumer = new GroupedConsumer<number>({
      brokers: KAFKA_BROKERS,
      group,
      topics: [topic],
      backend,
      maxWaitTime: 100,
    });
    const observer = new MemoryBackend({ store });
    await observer.connect();
    try {
      await expect(consumer.connect()).rejects.toThrow('connection lost');
      // Nothing of the failed attempt stays in the group.
      expect(await observer.members(group)).toEqual([]);
      await consumer.connect();
      await waitFor('every partition owned', () => consumer.assignment.length === 4);
      expect((await observer.members(group)).map((m) => m.info.id)).toEqual([consumer.memberId]);
    } finally {
      await consumer.close();
      await observer.close();
    }
  });

  it('adds partitions of a grown topic on the next metadata refresh when adding them failed', async () => {
    const topic = await t.create('growth-retry', 2);
    const store = new MemoryStore();
    const group = uniqueName('kiel-growth-retry');
    const { FailingSetWrite, control } = failingSetWrites();
    const consumer = new GroupedConsumer<number>({
      brokers: KAFKA_BROKERS,
      group,
      topics: [topic],
      backend: new FailingSetWrite({ store, sessionTimeout: 3000 }),
      maxWaitTime: 100,
      metadataMaxAge: 300,
    });
    const errors: KielError[] = [];
    consumer.on('error', (e) => errors.push(e));
    const run = consumer.run({ eachMessage: async () => undefined });
    const admin = kafka.admin();
    await admin.connect();
    try {
      await waitFor('both partitions owned', () => consumer.assignment.length === 2);
      control.armed = true;
      await admin.createPartitions({ topicPartitions: [{ topic, count: 4 }] });
      await waitFor('the failed attempt to add the new partitions', () => control.failed === 1);
      await waitFor('all four partitions owned', () => consumer.assignment.length === 4);
      expect(errors.map((e) => e.message)).toEqual([expect.stringContaining('connection lost')]);
    } finally {
      await admin.disconnect();
      await consumer.close();
      await run;
    }
  });

  it("keeps kiel's pull style: consume(topic) returns [] until allocated, then messages, and commits what it returned when asked for more", async () => {
    const topic = await t.create('pull', 3);
    await produce(
      topic,
      [...Array(30).keys()].map((i) => ({ partition: i % 3, value: String(i) })),
    );
    const group = uniqueName('kiel-pull');
    const consumer = new GroupedConsumer<number>({
      brokers: KAFKA_BROKERS,
      group,
      backend: new MemoryBackend({ store: new MemoryStore() }),
      maxWaitTime: 100,
    });
    await consumer.connect();
    const values: number[] = [];
    for (let i = 0; i < 100 && values.length < 30; i++)
      values.push(...(await consumer.consume(topic)).map((m) => m.value));
    expect(values.sort((x, y) => x - y)).toEqual([...Array(30).keys()]);
    // The last messages returned are the application's until it asks for more: a crash now redelivers them.
    expect(await committedOffsets(group, topic, 3)).not.toEqual([10, 10, 10]);
    expect(await consumer.consume(topic)).toEqual([]);
    expect(await committedOffsets(group, topic, 3)).toEqual([10, 10, 10]);
    await consumer.close();
  });

  it('retries a commit whose metadata is too large with empty metadata, as kiel does', async () => {
    const topic = await t.create('big-metadata', 1);
    await produce(topic, [{ value: '1' }, { value: '2' }]);
    const group = uniqueName('kiel-metadata');
    const consumer = new GroupedConsumer<number>({
      brokers: KAFKA_BROKERS,
      group,
      topics: [topic],
      backend: new MemoryBackend({ store: new MemoryStore() }),
      autocommit: false,
      maxWaitTime: 100,
    });
    await consumer.connect();
    const values: number[] = [];
    for (let i = 0; i < 50 && values.length < 2; i++)
      values.push(...(await consumer.consume(topic)).map((m) => m.value));
    // The broker's offset.metadata.max.bytes is 4096 by default.
    await consumer.commitOffsets('m'.repeat(10_000));
    expect(await committedOffsets(group, topic, 1)).toEqual([2]);
    await consumer.close();
  });

  it('explains ERR_GROUP_ID_CONFLICT when a native Kafka consumer group uses the same group id', async () => {
    const topic = await t.create('conflict', 1);
    await produce(topic, [{ value: '1' }]);
    const group = uniqueName('kiel-conflict');
    const native = kafka.consumer({ groupId: group });
    await native.connect();
    await native.subscribe({ topic, fromBeginning: false });
    let joined = false;
    native.on(native.events.GROUP_JOIN, () => (joined = true));
    void native.run({ eachMessage: async () => undefined });
    await waitFor('the native consumer to join', () => joined);
    const consumer = new GroupedConsumer<number>({
      brokers: KAFKA_BROKERS,
      group,
      topics: [topic],
      backend: new MemoryBackend({ store: new MemoryStore() }),
      maxWaitTime: 100,
    });
    try {
      await consumer.connect();
      let error: unknown;
      for (let i = 0; i < 50 && !error; i++) {
        await consumer.consume(topic).catch((e: unknown) => (error = e));
      }
      expect(error).toMatchObject({ code: 'ERR_GROUP_ID_CONFLICT' });
      expect((error as Error).message).toMatch(/native Kafka consumer group is using the same group id/);
    } finally {
      await native.disconnect();
      await consumer.close().catch(() => undefined);
    }
  });

  it('exits cleanly on SIGTERM in a child process, after committing what it handled', async () => {
    const topic = await t.create('sigterm', 2);
    await produce(
      topic,
      [...Array(20).keys()].map((i) => ({ partition: i % 2, value: String(i) })),
    );
    const group = uniqueName('kiel-sigterm');
    const child = spawn(
      process.execPath,
      [require.resolve('@kiel/test-kit/programs/sigterm-member.js'), KAFKA_BROKERS.join(','), group, topic],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    await waitFor('the child to handle 20 messages', () => out.includes('handled 20'), 30_000);
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect({ code, err }).toEqual({ code: 0, err: '' });
    expect(await committedOffsets(group, topic, 2)).toEqual([10, 10]);
  });
});
