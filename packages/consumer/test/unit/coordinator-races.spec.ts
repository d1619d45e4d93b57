// Races in PartitionAllocator's handoff, leader loop and session recovery, driven directly on the in-memory backend
// with fake handoff hooks. Every interleaving is forced with gates (promises the test opens), never left to timing.
// No Kafka, ZooKeeper or etcd: MemoryStore plays the coordination server.
import {
  MemoryBackend,
  type Member as BackendMember,
  type MemberInfo,
  type RecordName,
  type RecordVersion,
  type VersionedRecord,
} from '../../src/internal';
import { sleep, waitFor } from '@kiel/test-kit';
import { Group, injected, settles } from './coordinator-group';

const P = 't:0';

describe('PartitionAllocator races', () => {
  let group: Group;
  beforeEach(() => {
    group = new Group();
  });
  afterEach(async () => {
    await group.close();
  });

  it('starts fetching a partition again when a generation gives it back after its revoke failed', async () => {
    const commit = group.gate();
    let revoking = false;
    const a = await group.start('A', {
      rig: {
        committing: async (ids) => {
          if (!ids.includes(P) || revoking) return;
          revoking = true;
          await commit.wait;
          throw new Error('injected: commit failed');
        },
      },
    });
    const b = await group.start('B');
    group.placement.set(P, a);
    await a.coordinator.addPartitions([P]);
    await waitFor('A fetching p', () => a.coordinator.isOwned(P) && a.fetching.has(P), 3_000);

    // A generation moves p to B: A's revoke stops fetching p, then its commit hangs on the gate.
    group.placement.set(P, b);
    await group.nudge();
    await waitFor('A revoking p', () => revoking, 3_000);
    expect(a.fetching.has(P)).toBe(false);

    // The next generation gives p back to A while that revoke is still out; then the commit fails.
    group.placement.set(P, a);
    await group.nudge();
    await waitFor('A following the generation that gives p back', () => group.published(P, a, a), 3_000);
    commit.open();

    // p is owned and targeted again: A must start fetching it again (the reconcile retry comes after 500 ms).
    await settles(() => a.coordinator.isOwned(P) && a.fetching.has(P), 2_500);
    expect({ owned: a.coordinator.isOwned(P), fetching: a.fetching.has(P) }).toEqual({ owned: true, fetching: true });
  });

  it('keeps one member entry per coordinator when a step of a rejoin fails and is retried', async () => {
    // After the session is lost, the second join succeeds but the allocation read that follows fails once.
    class FailingRejoinRead extends MemoryBackend {
      joins = 0;
      failed = false;
      override async join(g: string, info: MemberInfo): Promise<BackendMember> {
        this.joins++;
        return super.join(g, info);
      }
      override async readRecord(g: string, name: RecordName): Promise<VersionedRecord | null> {
        if (name === 'allocation' && this.joins === 2 && !this.failed) {
          this.failed = true;
          throw injected('the allocation read of the rejoin failed');
        }
        return super.readRecord(g, name);
      }
    }
    const a = await group.start('A', { Backend: FailingRejoinRead });
    const b = await group.start('B');
    const all = ['t:0', 't:1', 't:2', 't:3'];
    await a.coordinator.addPartitions(all);
    await waitFor(
      'all partitions owned',
      () => all.every((id) => a.coordinator.isOwned(id) || b.coordinator.isOwned(id)),
      3_000,
    );

    // One rejoin, announced once, however many attempts it takes.
    const rejoined: string[] = [];
    a.coordinator.on('rejoined', ({ memberId }) => rejoined.push(memberId));

    group.store.expireSession(a.backend.sessionId!);
    // Rejoin attempt 1 joins, then fails; attempt 2 joins again (today under a new id) and succeeds.
    await waitFor(
      'A rejoined and both members on the allocation that includes it',
      async () => {
        const allocation = await group.allocation();
        return (
          // The retry joined again (attempt 1 joined, then its allocation read failed).
          a.backend.joins === 3 &&
          allocation !== undefined &&
          allocation.members.includes(a.coordinator.memberId) &&
          a.coordinator.currentGeneration === allocation.generation &&
          b.coordinator.currentGeneration === allocation.generation
        );
      },
      3_000,
    );

    const entries = async () => (await group.observer.members(group.name)).map((m) => group.nameOf(m.info.id)).sort();
    expect(await entries()).toEqual(['A', 'B']);
    expect(rejoined).toEqual([a.coordinator.memberId]);
    await settles(() => all.every((id) => a.coordinator.isOwned(id) || b.coordinator.isOwned(id)), 2_000);
    expect(all.filter((id) => !a.coordinator.isOwned(id) && !b.coordinator.isOwned(id))).toEqual([]);
  });

  it('releases a claim whose reply was lost once a generation gives the partition to another member', async () => {
    // A's first claim of p is made in the store, but its reply is lost: the call rejects once the gate opens.
    class LostClaimReply extends MemoryBackend {
      landed = false;
      readonly reply = group.gate();
      override async claim(g: string, partition: string, value: string): Promise<boolean> {
        if (partition !== P || this.landed) return super.claim(g, partition, value);
        this.landed = true;
        await super.claim(g, partition, value);
        await this.reply.wait;
        throw injected('the reply to the claim was lost');
      }
    }
    const a = await group.start('A', { Backend: LostClaimReply });
    const c = await group.start('C');
    group.placement.set(P, a);
    await a.coordinator.addPartitions([P]);
    await waitFor('A claim of p made, its reply held', () => a.backend.landed, 3_000);
    expect(await group.claimant(P)).toBe('A');

    // The next generation moves p to C before A hears how its claim went; C waits for A's claim to go.
    group.placement.set(P, c);
    await group.nudge();
    await waitFor('A and C following the generation that gives p to C', () => group.published(P, c, a, c), 3_000);
    a.backend.reply.open();

    // Nobody else can release A's claim: A must, so that C gets p.
    await settles(() => c.coordinator.isOwned(P), 3_000);
    expect({ cOwnsP: c.coordinator.isOwned(P), claimant: await group.claimant(P) }).toEqual({
      cOwnsP: true,
      claimant: 'C',
    });
  });

  it('retries a failed rebalance by itself, without waiting for another change', async () => {
    // The leader's next write of the allocation fails once (a transient error; the session stays up).
    class FlakyAllocationWrite extends MemoryBackend {
      armed = false;
      override async writeRecord(
        g: string,
        name: RecordName,
        value: string,
        expected: RecordVersion | null,
      ): Promise<RecordVersion | null> {
        if (name === 'allocation' && this.armed) {
          this.armed = false;
          throw injected('the allocation write failed');
        }
        return super.writeRecord(g, name, value, expected);
      }
    }
    const a = await group.start('A', { Backend: FlakyAllocationWrite });
    const b = await group.start('B');
    const all = ['t:0', 't:1', 't:2', 't:3'];
    await a.coordinator.addPartitions(all);
    await waitFor(
      'the partitions split between A and B',
      () =>
        a.coordinator.ownedPartitions.length === 2 &&
        b.coordinator.ownedPartitions.length === 2 &&
        a.coordinator.currentGeneration === b.coordinator.currentGeneration,
      3_000,
    );

    // B leaves: the leader's rebalance for that change fails to publish. Nothing else changes afterwards.
    a.backend.armed = true;
    await b.coordinator.stop();
    await waitFor('the failed allocation write', () => !a.backend.armed, 3_000);

    await settles(() => a.coordinator.ownedPartitions.length === all.length, 3_000);
    expect(a.coordinator.ownedPartitions).toEqual(all);
  });

  it('postpones a revocation while fenced, keeping the claim, and revokes with a commit once contact returns', async () => {
    const assigned = group.gate();
    let assigning = false;
    // A's heartbeat runs every 800 ms (sessionTimeout / 5): it fences after 1.2 s without contact and its session
    // would expire after 4 s, so there is time to look at it fenced and restore it.
    const a = await group.start('A', {
      sessionTimeout: 4_000,
      fencingTimeout: 1_200,
      rig: {
        assigning: async (ids) => {
          if (!ids.includes(P) || assigning) return;
          assigning = true;
          await assigned.wait;
        },
      },
    });
    const b = await group.start('B');
    group.placement.set(P, a);
    await a.coordinator.addPartitions([P]);
    await waitFor('A claim of p held, its assign hook under way', () => assigning && a.coordinator.isOwned(P), 3_000);

    // A generation moves p to B. A's revocation of p waits for the assign hook still running: the delayed step.
    group.placement.set(P, b);
    await group.nudge();
    await waitFor('A and B following the generation that gives p to B', () => group.published(P, b, a, b), 3_000);

    // A is cut off and fences itself; only then does the assign hook finish and the revocation go on.
    group.store.cutOffSession(a.backend.sessionId!);
    await waitFor('A fenced', () => a.coordinator.isFenced, 3_000);
    assigned.open();
    await sleep(200);
    expect({
      fenced: a.coordinator.isFenced,
      hooksForP: a.log.filter((entry) => entry.endsWith(` ${P}`)),
      claimant: await group.claimant(P),
    }).toEqual({ fenced: true, hooksForP: [`assign ${P}`], claimant: 'A' });

    // Contact returns: A unfences, then revokes p (commit), then releases it; B gets it.
    group.store.restoreSession(a.backend.sessionId!);
    await waitFor('B owning p', () => b.coordinator.isOwned(P), 3_000);
    expect(a.log.filter((entry) => entry.endsWith(` ${P}`) || entry.startsWith('fence'))).toEqual([
      `assign ${P}`,
      'fence true',
      'fence false',
      `revoke ${P}`,
    ]);
  });

  it('reports only partitions it owns in the rebalance events after rejoining a lost session', async () => {
    const assigned = group.gate();
    let assigning = false;
    const a = await group.start('A', {
      rig: {
        assigning: async (ids) => {
          if (!ids.includes(P) || assigning) return;
          assigning = true;
          await assigned.wait;
        },
      },
    });
    const events: Array<{ generation: number; assigned: string[]; owned: string[] }> = [];
    a.coordinator.on('rebalance', ({ generation, assigned: ids }) =>
      events.push({ generation, assigned: ids, owned: a.coordinator.ownedPartitions }),
    );
    const b = await group.start('B');
    const Q = 't:1';
    group.placement.set(P, a);
    group.placement.set(Q, b);
    await a.coordinator.addPartitions([P, Q]);
    await waitFor('A assigning p, B owning q', () => assigning && b.coordinator.isOwned(Q), 3_000);

    // A's session is lost while its assign hook for p still runs; from now on p belongs to B.
    group.placement.set(P, b);
    group.store.expireSession(a.backend.sessionId!);
    await waitFor(
      'A rejoined and following the generation that includes its new id',
      async () => {
        const allocation = await group.allocation();
        return (
          a.ids.length > 1 &&
          allocation !== undefined &&
          allocation.members.includes(a.coordinator.memberId) &&
          a.coordinator.currentGeneration === allocation.generation &&
          b.coordinator.isOwned(P)
        );
      },
      3_000,
    );
    const rejoinedGeneration = a.coordinator.currentGeneration;

    // The assign hook of the lost session ends now; A then reports the generation it rejoined into.
    assigned.open();
    await waitFor(
      'A reporting the generation it rejoined into',
      () => events.some((e) => e.generation === rejoinedGeneration),
      3_000,
    );
    await sleep(50);
    expect(a.coordinator.ownedPartitions).toEqual([]);
    const wrong = events.filter((e) => e.assigned.some((id) => !e.owned.includes(id)));
    expect(wrong).toEqual([]);
  });

  it('claims a partition again when a generation gives it back while its release was under way', async () => {
    class HeldRelease extends MemoryBackend {
      readonly held = group.gate();
      holding = false;
      override async release(g: string, partition: string): Promise<void> {
        if (partition === P && !this.holding) {
          this.holding = true;
          await this.held.wait;
        }
        return super.release(g, partition);
      }
    }
    const a = await group.start('A', { Backend: HeldRelease });
    const events: number[] = [];
    a.coordinator.on('rebalance', ({ generation }) => events.push(generation));
    const b = await group.start('B');
    group.placement.set(P, a);
    await a.coordinator.addPartitions([P]);
    await waitFor('A fetching p', () => a.fetching.has(P), 3_000);

    // p moves to B: A commits and starts releasing its claim, and the release is held.
    group.placement.set(P, b);
    await group.nudge();
    await waitFor('A releasing p', () => a.backend.holding, 3_000);
    // The next generation gives p back to A while the release is still out (B's claim wait is cancelled).
    group.placement.set(P, a);
    await group.nudge();
    await waitFor('A and B following the generation that gives p back', () => group.published(P, a, a, b), 3_000);
    const generation = a.coordinator.currentGeneration;
    a.backend.held.open();

    // Nothing else will ask A to reconcile: the release's own end must lead to claiming p again.
    await settles(() => a.fetching.has(P) && events.includes(generation), 3_000);
    expect({
      owned: a.coordinator.isOwned(P),
      fetching: a.fetching.has(P),
      claimant: await group.claimant(P),
      reported: events.includes(generation),
    }).toEqual({ owned: true, fetching: true, claimant: 'A', reported: true });
  });

  it('hands every partition back when the leader stops while its own allocation write is in flight', async () => {
    class HeldWrite extends MemoryBackend {
      readonly write = group.gate();
      readonly leaving = group.gate();
      armed = false;
      holding = false;
      written: Promise<void> | undefined;
      override async writeRecord(
        g: string,
        name: RecordName,
        value: string,
        expected: RecordVersion | null,
      ): Promise<RecordVersion | null> {
        if (name !== 'allocation' || !this.armed) return super.writeRecord(g, name, value, expected);
        this.armed = false;
        this.holding = true;
        let done!: () => void;
        this.written = new Promise((resolve) => (done = resolve));
        await this.write.wait;
        try {
          return await super.writeRecord(g, name, value, expected);
        } finally {
          // After the caller's continuation, which applies the record it wrote.
          setImmediate(done);
        }
      }
      override async leave(g: string): Promise<void> {
        await this.leaving.wait;
        return super.leave(g);
      }
    }
    const a = await group.start('A', { Backend: HeldWrite });
    const b = await group.start('B');
    group.placement.set(P, a);
    await a.coordinator.addPartitions([P]);
    await waitFor('A leading and fetching p', () => a.coordinator.isLeader && a.fetching.has(P), 3_000);

    // A computes the next generation (p stays with A) and its write is held; then A stops.
    a.backend.armed = true;
    await group.nudge(b);
    await waitFor('the allocation write held', () => a.backend.holding, 3_000);
    const stopped = a.coordinator.stop();
    // The write lands after stop() began; only then does A leave and hand back.
    a.backend.write.open();
    await a.backend.written;
    a.backend.leaving.open();
    await stopped;

    expect({ fetching: [...a.fetching], log: a.log.filter((line) => line.endsWith(P)) }).toEqual({
      fetching: [],
      log: [`assign ${P}`, `revoke ${P}`],
    });
  });

  it("does not let a lost session's assign hook start fetching under the next session's claim", async () => {
    // A's assign of p (its offset lookup) hangs across a lost session. A rejoins and p is still A's, then moves to B.
    // The old hook must not find p owned by A's new session and start fetching it while B fetches it: the new claim
    // waits for the old session's step to end (one step per partition at a time, across sessions).
    const lookup = group.gate();
    const commit = group.gate();
    let assigns = 0;
    let both = false;
    const a = await group.start('A', {
      rig: {
        assigning: async (ids) => {
          if (ids.includes(P) && assigns++ === 0) await lookup.wait;
        },
        committing: async (ids) => {
          if (ids.includes(P)) await commit.wait;
        },
        fetching: () => {
          if (a?.fetching.has(P) && b?.fetching.has(P)) both = true;
        },
      },
    });
    const b = await group.start('B', {
      rig: {
        fetching: () => {
          if (a.fetching.has(P) && b?.fetching.has(P)) both = true;
        },
      },
    });
    group.placement.set(P, a);
    await a.coordinator.addPartitions([P]);
    await waitFor('A looking up p', () => assigns === 1, 3_000);

    const lostId = a.coordinator.memberId;
    group.store.expireSession(a.backend.sessionId!);
    await waitFor(
      'A rejoined, and p is its own again',
      async () => a.coordinator.memberId !== lostId && (await group.published(P, a, a, b)),
      3_000,
    );
    // Time for the new session's claim and assign (the old code fetched p again here).
    await sleep(200);
    group.placement.set(P, b);
    await group.nudge();
    await sleep(200);
    // The old lookup ends now: before the fix, p was A's new session's (revoking, its commit on the gate), so the old
    // hook started fetching it, and kept fetching after the release let B take it.
    lookup.open();
    await sleep(50);
    commit.open();
    await waitFor('B fetching p', () => b.fetching.has(P), 3_000);
    await sleep(100);
    expect({ aFetching: a.fetching.has(P), both, claimant: await group.claimant(P) }).toEqual({
      aFetching: false,
      both: false,
      claimant: 'B',
    });
  });
});
