// Per-partition handoff in PartitionAllocator: one partition whose commit fails or hangs must not hold up the others'
// release, and a partition removed from the group's set (a deleted topic) leaves the allocation.
import { sleep, waitFor } from '@kiel/test-kit';
import { Group, settles } from './coordinator-group';

const P0 = 't:0';
const P1 = 't:1';
const P2 = 't:2';

describe('PartitionAllocator per-partition handoff', () => {
  let group: Group;
  beforeEach(() => {
    group = new Group();
  });
  afterEach(async () => {
    await group.close();
  });

  it('releases the other revoked partitions while one partition commit hangs, and hands that one over once it ends', async () => {
    const commit = group.gate();
    const revokeCalls: string[][] = [];
    const a = await group.start('A', {
      rig: {
        committing: async (ids) => {
          revokeCalls.push(ids);
          if (ids.includes(P0)) await commit.wait;
        },
      },
    });
    const b = await group.start('B');
    for (const id of [P0, P1, P2]) group.placement.set(id, a);
    await a.coordinator.addPartitions([P0, P1, P2]);
    await waitFor('A owning p0, p1 and p2', () => [P0, P1, P2].every((id) => a.coordinator.isOwned(id)), 3_000);

    // All three move to B; A's commit of p0 hangs.
    for (const id of [P0, P1, P2]) group.placement.set(id, b);
    await group.nudge();
    await settles(() => b.coordinator.isOwned(P1) && b.coordinator.isOwned(P2), 2_000);
    expect({
      b: b.coordinator.ownedPartitions.filter((id) => id.startsWith('t:')),
      a: a.coordinator.ownedPartitions.filter((id) => id.startsWith('t:')),
      p0: await group.claimant(P0),
    }).toEqual({ b: [P1, P2], a: [P0], p0: 'A' });
    // Each partition was revoked on its own.
    expect(revokeCalls.filter((ids) => ids.some((id) => id.startsWith('t:'))).map((ids) => ids.length)).toEqual([
      1, 1, 1,
    ]);

    // The hung commit ends: p0 follows.
    commit.open();
    await waitFor('B owning p0', () => b.coordinator.isOwned(P0), 3_000);
    expect(a.coordinator.isOwned(P0)).toBe(false);
  });

  it('retries a failed partition revocation without holding the others, and reports the generation once done', async () => {
    let failures = 1;
    const a = await group.start('A', {
      rig: {
        committing: async (ids) => {
          if (ids.includes(P0) && failures > 0) {
            failures--;
            throw new Error('injected: commit of p0 refused');
          }
        },
      },
    });
    const b = await group.start('B');
    for (const id of [P0, P1]) group.placement.set(id, a);
    await a.coordinator.addPartitions([P0, P1]);
    await waitFor('A owning p0 and p1', () => a.coordinator.isOwned(P0) && a.coordinator.isOwned(P1), 3_000);
    const events: Array<{ generation: number; revoked: string[]; owned: string[] }> = [];
    a.coordinator.on('rebalance', ({ generation, revoked }) =>
      events.push({ generation, revoked, owned: a.coordinator.ownedPartitions }),
    );

    for (const id of [P0, P1]) group.placement.set(id, b);
    await group.nudge();
    // p1 goes at once; p0 after its retry (500 ms later).
    await waitFor('B owning p1', () => b.coordinator.isOwned(P1), 400);
    expect(a.coordinator.isOwned(P0)).toBe(true);
    expect(events).toEqual([]);
    await waitFor('B owning p0 after the retry', () => b.coordinator.isOwned(P0), 3_000);
    await waitFor('A reporting the generation', () => events.length > 0, 3_000);
    const generation = a.coordinator.currentGeneration;
    expect(events).toEqual([{ generation, revoked: [P0, P1], owned: a.coordinator.ownedPartitions }]);
    expect(a.errors.map((e) => e.message).join('\n')).toMatch(/commit of p0 refused/);
  });

  it('finishes a revocation under way when the member stops, with one commit, then hands the rest back', async () => {
    const commit = group.gate();
    const a = await group.start('A', {
      rig: {
        committing: async (ids) => {
          if (ids.includes(P0)) await commit.wait;
        },
      },
    });
    const b = await group.start('B');
    for (const id of [P0, P1]) group.placement.set(id, a);
    await a.coordinator.addPartitions([P0, P1]);
    await waitFor('A owning p0 and p1', () => a.coordinator.isOwned(P0) && a.coordinator.isOwned(P1), 3_000);
    const events: Array<{ revoked: string[] }> = [];
    a.coordinator.on('rebalance', ({ revoked }) => events.push({ revoked }));

    // p0 moves to B; A's commit of p0 hangs. A then stops, and the commit ends.
    group.placement.set(P0, b);
    await group.nudge();
    await waitFor('A revoking p0', () => a.log.includes(`revoke ${P0}`), 3_000);
    const stopped = a.coordinator.stop();
    commit.open();
    await stopped;

    await waitFor('B owning p0 and p1', () => b.coordinator.isOwned(P0) && b.coordinator.isOwned(P1), 3_000);
    expect(a.log.filter((entry) => entry.startsWith('revoke t:'))).toEqual([`revoke ${P0}`, `revoke ${P1}`]);
    // p0 in the generation that moved it, p1 in the hand-back of the close.
    expect(events.map((e) => e.revoked.filter((id) => id.startsWith('t:')))).toEqual([[P0], [P1]]);
  });

  it('reports a generation that gives a partition back only once its revocation under way has ended', async () => {
    const commit = group.gate();
    let revoking = false;
    const a = await group.start('A', {
      rig: {
        committing: async (ids) => {
          if (!ids.includes(P0) || revoking) return;
          revoking = true;
          await commit.wait;
        },
      },
    });
    const b = await group.start('B');
    group.placement.set(P0, a);
    await a.coordinator.addPartitions([P0]);
    await waitFor('A fetching p0', () => a.fetching.has(P0), 3_000);
    const generations: number[] = [];
    a.coordinator.on('rebalance', ({ generation }) => generations.push(generation));

    // p0 moves to B (A's commit hangs), then comes back to A.
    group.placement.set(P0, b);
    await group.nudge();
    await waitFor('A revoking p0', () => revoking, 3_000);
    group.placement.set(P0, a);
    await group.nudge();
    await waitFor('A following the generation that gives p0 back', () => group.published(P0, a, a), 3_000);
    const back = a.coordinator.currentGeneration;
    await sleep(100);
    // Not fetching p0 yet (its revocation still runs): that generation is not applied yet.
    expect({ fetching: a.fetching.has(P0), reported: generations.includes(back) }).toEqual({
      fetching: false,
      reported: false,
    });

    commit.open();
    await waitFor('A fetching p0 again', () => a.fetching.has(P0), 3_000);
    await waitFor('A reporting that generation', () => generations.includes(back), 3_000);
  });

  it('drops removed partitions from the next allocation the leader publishes', async () => {
    const a = await group.start('A');
    const b = await group.start('B');
    await a.coordinator.addPartitions([P0, P1, 'gone:0', 'gone:1']);
    await waitFor(
      'all four owned',
      () => [P0, P1, 'gone:0', 'gone:1'].every((id) => a.coordinator.isOwned(id) || b.coordinator.isOwned(id)),
      3_000,
    );

    // B (not the leader) removes the deleted topic; the leader publishes an allocation without it.
    await b.coordinator.removePartitions(['gone:0', 'gone:1', 'never:0']);
    await waitFor(
      'an allocation without the removed topic',
      async () => {
        const allocation = await group.allocation();
        return allocation !== undefined && !JSON.stringify(allocation.assignment).includes('gone');
      },
      3_000,
    );
    const allocation = (await group.allocation())!;
    expect(Object.values(allocation.assignment).flatMap((topics) => Object.keys(topics))).toEqual(['t', 't']);
    await waitFor(
      'nobody owning the removed partitions',
      () => ['gone:0', 'gone:1'].every((id) => !a.coordinator.isOwned(id) && !b.coordinator.isOwned(id)),
      3_000,
    );
    expect(JSON.parse((await group.observer.readRecord(group.name, 'partitions'))!.value)).toEqual([P0, P1]);
  });
});
