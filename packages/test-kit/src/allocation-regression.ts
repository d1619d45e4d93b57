// The allocation record that went back, on a real backend: PartitionAllocators recover with no operator action from a
// record that went below a generation they follow, written back by hand (a restored backup) or deleted. One scenario
// for every backend package; the backend's test supplies how to make backends and how to delete a record as an
// operator would, with the server's own client.
import { PartitionAllocator, type AllocatorBackend, type HandoffHooks, type KielError } from '@kiel/consumer/internal';
import type { Assignment, Strategy } from '@kiel/allocators';
import { waitFor } from './wait';

/** What the allocation-regression cases need from a backend package's test. */
export interface AllocationRegressionBackend {
  /** Names the backend in the suite's title, e.g. `ZooKeeper`. */
  readonly name: string;
  /** A new, unconnected backend in this suite's own namespace; the suite starts it through a PartitionAllocator. */
  make(): AllocatorBackend;
  /** A connected backend in the same namespace, to read and write records with. */
  connected(): Promise<AllocatorBackend>;
  /** Deletes the record at `location` (as a record reports it) with the server's own client. */
  deleteRecord(location: string): Promise<void>;
  /** Closes every backend made, after each case. */
  closeAll(): Promise<void>;
  /** Removes the namespace, after the suite. */
  cleanup(): Promise<void>;
}

const ALL = ['t:0', 't:1', 't:2', 't:3'];

/** Round-robin over the sorted members, in the order partitions come. */
const roundRobin: Strategy = (memberIds, partitions) => {
  const assignment: Assignment = {};
  partitions.forEach((input, i) => {
    const id = typeof input === 'string' ? input : `${input.topic}:${input.partition}`;
    const member = memberIds[i % memberIds.length]!;
    const at = id.lastIndexOf(':');
    ((assignment[member] ??= {})[id.slice(0, at)] ??= []).push(Number(id.slice(at + 1)));
  });
  return assignment;
};

interface Member {
  readonly coordinator: PartitionAllocator;
  readonly revoked: string[];
  readonly errors: KielError[];
}

function member(backend: AllocatorBackend, group: string): Member {
  const revoked: string[] = [];
  const hooks: HandoffHooks = {
    assign: async () => undefined,
    revoke: async (partitions) => {
      revoked.push(...partitions.map((p) => `${p.topic}:${p.partition}`));
    },
    drop: () => undefined,
    fence: () => undefined,
  };
  const coordinator = new PartitionAllocator({
    backend,
    group,
    strategy: roundRobin,
    strategyName: 'round-robin',
    fencingTimeout: undefined,
    rejoin: true,
    hooks,
  });
  const errors: KielError[] = [];
  coordinator.on('error', (e) => errors.push(e));
  return { coordinator, revoked, errors };
}

/** Waits until the published generation is `generation + 1` and every member follows it. */
async function followedAbove(
  observer: AllocatorBackend,
  group: string,
  generation: number,
  members: readonly Member[],
  what: string,
): Promise<void> {
  await waitFor(
    what,
    async () => {
      const record = await observer.readRecord(group, 'allocation');
      const published = record ? (JSON.parse(record.value) as { generation: number }).generation : 0;
      return published === generation + 1 && members.every((m) => m.coordinator.currentGeneration === published);
    },
    5_000,
  );
}

/** The two cases as a jest suite. */
export function describeAllocationRegression(backend: AllocationRegressionBackend): void {
  describe(`PartitionAllocator on ${backend.name} and an allocation record that went back`, () => {
    let members: Member[] = [];

    afterEach(async () => {
      await Promise.all(members.map((m) => m.coordinator.stop().catch(() => undefined)));
      members = [];
      await backend.closeAll();
    });

    afterAll(async () => {
      await backend.cleanup();
    });
    async function twoMembers(group: string): Promise<{ a: Member; b: Member; generation: number }> {
      const a = member(backend.make(), group);
      await a.coordinator.start();
      const b = member(backend.make(), group);
      await b.coordinator.start();
      members = [a, b];
      await a.coordinator.addPartitions(ALL);
      await waitFor(
        'A and B on one generation with two partitions each',
        () =>
          [a, b].every(
            (m) =>
              m.coordinator.ownedPartitions.length === 2 &&
              m.coordinator.currentGeneration === a.coordinator.currentGeneration,
          ),
        5_000,
      );
      return { a, b, generation: a.coordinator.currentGeneration };
    }

    it('publishes above a lower generation written over the record, and no member follows the old one', async () => {
      const group = 'restored';
      const { a, b, generation } = await twoMembers(group);
      const observer = await backend.connected();
      const current = (await observer.readRecord(group, 'allocation'))!;
      const old = {
        generation: generation - 1,
        leader: 'an-old-leader',
        strategy: 'round-robin',
        members: [a.coordinator.memberId],
        partitions: ALL,
        assignment: { [a.coordinator.memberId]: { t: [0, 1, 2, 3] } },
      };
      expect(await observer.writeRecord(group, 'allocation', JSON.stringify(old), current.version)).not.toBeNull();

      await followedAbove(
        observer,
        group,
        generation,
        [a, b],
        'a republished generation above both, followed by A and B',
      );
      expect(b.revoked).toEqual([]);
      expect(b.coordinator.ownedPartitions).toHaveLength(2);
      expect([...a.errors, ...b.errors].some((e) => e.code === 'ERR_STALE_ALLOCATION')).toBe(true);
    });

    it('publishes above the last generation when the record is deleted', async () => {
      const group = 'deleted';
      const { a, b, generation } = await twoMembers(group);
      const observer = await backend.connected();
      const current = (await observer.readRecord(group, 'allocation'))!;
      await backend.deleteRecord(current.location);

      await followedAbove(
        observer,
        group,
        generation,
        [a, b],
        'a generation above the deleted one, followed by A and B',
      );
      expect([...a.revoked, ...b.revoked]).toEqual([]);
      expect(a.errors.map((e) => e.message).join('\n')).toMatch(/went back to deleted after generation/);
    });
  });
}
