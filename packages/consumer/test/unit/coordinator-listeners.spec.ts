// A listener of the coordinator's events that throws (the application's, reached through GroupedConsumer's
// forwarding) must never abort recovery or skip a generation: it is reported, and the coordinator goes on.
import { EventEmitter } from 'node:events';
import type { PartitionAllocatorEvents, PartitionAllocator } from '../../src/internal';
import { waitFor } from '@kiel/test-kit';
import { Group } from './coordinator-group';

let group: Group;

/** Forwards the coordinator's events to an application emitter, as GroupedConsumer does with forward(). */
function forwarded(coordinator: PartitionAllocator): EventEmitter {
  const app = new EventEmitter();
  for (const event of ['rebalance', 'fenced', 'unfenced', 'lost', 'rejoined', 'leader'] as const) {
    coordinator.on(event, ((...args: unknown[]) => app.emit(event, ...args)) as (
      ...args: PartitionAllocatorEvents[typeof event]
    ) => void);
  }
  return app;
}

describe('PartitionAllocator listeners that throw', () => {
  beforeEach(() => {
    group = new Group();
  });
  afterEach(async () => {
    await group.close();
  });

  it('rejoins after a lost session although a lost listener throws, and reports the throw', async () => {
    const a = await group.start('A');
    const app = forwarded(a.coordinator);
    app.on('lost', () => {
      throw new Error('injected: the application lost listener failed');
    });
    const firstId = a.coordinator.memberId;
    group.store.expireSession(a.backend.sessionId!);
    await waitFor('A rejoined as a new member', () => a.ids.length === 2 && a.coordinator.memberId !== firstId, 3_000);
    await a.coordinator.addPartitions(['t:0']);
    await waitFor('A owning t:0 after the rejoin', () => a.coordinator.isOwned('t:0'), 3_000);
    const reported = a.errors.filter((e) => e.code === 'ERR_LISTENER');
    expect(reported.map((e) => e.message)).toEqual([expect.stringMatching(/lost.*application lost listener failed/)]);
  });

  it('keeps following generations although a rebalance listener throws every time', async () => {
    const a = await group.start('A');
    const app = forwarded(a.coordinator);
    let calls = 0;
    app.on('rebalance', () => {
      calls++;
      throw new Error('injected: the application rebalance listener failed');
    });
    const b = await group.start('B');
    await a.coordinator.addPartitions(['t:0', 't:1']);
    await waitFor(
      't:0 and t:1 owned',
      () => ['t:0', 't:1'].every((id) => a.coordinator.isOwned(id) || b.coordinator.isOwned(id)),
      3_000,
    );
    const before = calls;
    await group.nudge();
    await waitFor(
      'A following the next generation and owning its share',
      async () => {
        const allocation = await group.allocation();
        return (
          allocation !== undefined &&
          a.coordinator.currentGeneration === allocation.generation &&
          a.coordinator.ownedPartitions.length > 0 &&
          calls > before
        );
      },
      3_000,
    );
    expect(a.errors.filter((e) => e.code === 'ERR_LISTENER').length).toBe(calls);
  });

  it('rebalances when it becomes the leader although a leader listener throws', async () => {
    const a = await group.start('A');
    const b = await group.start('B');
    const app = forwarded(b.coordinator);
    app.on('leader', () => {
      throw new Error('injected: the application leader listener failed');
    });
    await a.coordinator.addPartitions(['t:0', 't:1']);
    await waitFor(
      't:0 and t:1 split',
      () => a.coordinator.ownedPartitions.length === 1 && b.coordinator.ownedPartitions.length === 1,
      3_000,
    );

    // A leaves: B leads now, and must publish an allocation without A, so that it takes both partitions.
    await a.coordinator.stop();
    await waitFor('B owning t:0 and t:1', () => b.coordinator.ownedPartitions.length === 2, 3_000);
    expect(b.coordinator.isLeader).toBe(true);
    expect(b.errors.filter((e) => e.code === 'ERR_LISTENER').map((e) => e.message)).toEqual([
      expect.stringMatching(/leader.*application leader listener failed/),
    ]);
  });

  it('swallows an error listener that throws', async () => {
    const a = await group.start('A');
    a.coordinator.on('error', () => {
      throw new Error('injected: the error listener failed');
    });
    a.coordinator.on('lost', () => {
      throw new Error('injected: the lost listener failed');
    });
    group.store.expireSession(a.backend.sessionId!);
    await waitFor('A rejoined', () => a.ids.length === 2, 3_000);
    expect(a.errors.map((e) => e.code)).toContain('ERR_LISTENER');
  });
});
