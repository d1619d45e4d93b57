// An allocation record that goes below a generation already followed (deleted and restored, a backup, a hand-written
// record) must not stop rebalancing: the leader publishes above it, and no member goes back to the old assignment.
import {
  MemoryBackend,
  type Member,
  type MemberInfo,
  type RecordListener,
  type RecordName,
  type Unsubscribe,
} from '../../src/internal';
import { sleep, waitFor } from '@kiel/test-kit';
import { Group, type TestMember } from './coordinator-group';

const ALL = ['t:0', 't:1', 't:2', 't:3'];

let group: Group;

/** Seeds the partitions, then moves the group on a few generations, until A and B follow the published one. */
async function settle(a: TestMember, b: TestMember): Promise<void> {
  ALL.forEach((id, i) => group.placement.set(id, i < 2 ? a : b));
  await a.coordinator.addPartitions(ALL);
  for (let i = 0; i < 4; i++) {
    const published = (await group.allocation())?.generation ?? 0;
    await group.nudge();
    await waitFor('the next generation', async () => ((await group.allocation())?.generation ?? 0) > published, 3_000);
  }
  await waitFor(
    'the partitions split between A and B on one generation',
    async () => {
      const allocation = await group.allocation();
      return (
        allocation !== undefined &&
        allocation.generation > 3 &&
        a.coordinator.ownedPartitions.filter((id) => id.startsWith('t:')).length === 2 &&
        b.coordinator.ownedPartitions.filter((id) => id.startsWith('t:')).length === 2 &&
        a.coordinator.currentGeneration === allocation.generation &&
        b.coordinator.currentGeneration === allocation.generation
      );
    },
    3_000,
  );
}

describe('PartitionAllocator and an allocation record that went back', () => {
  beforeEach(() => {
    group = new Group();
  });
  afterEach(async () => {
    await group.close();
  });

  it('republishes above a restored lower generation, and the follower never follows the old record', async () => {
    const a = await group.start('A');
    const b = await group.start('B');
    await settle(a, b);
    const before = a.coordinator.currentGeneration;
    const bGenerations: number[] = [];
    b.coordinator.on('rebalance', ({ generation }) => bGenerations.push(generation));

    // Someone writes back an old record (generation 1) that gives every partition to A, over the current one.
    const current = (await group.observer.readRecord(group.name, 'allocation'))!;
    const restored = {
      generation: 1,
      leader: a.coordinator.memberId,
      strategy: 'placement',
      members: [a.coordinator.memberId],
      partitions: ALL,
      assignment: { [a.coordinator.memberId]: { t: [0, 1, 2, 3] } },
    };
    expect(
      await group.observer.writeRecord(group.name, 'allocation', JSON.stringify(restored), current.version),
    ).not.toBeNull();

    // The leader overwrites it with a generation above everything it saw; both follow that one.
    await waitFor(
      'a republished generation above the old one, followed by A and B',
      async () => {
        const allocation = await group.allocation();
        return (
          allocation !== undefined &&
          allocation.generation === before + 1 &&
          a.coordinator.currentGeneration === before + 1 &&
          b.coordinator.currentGeneration === before + 1
        );
      },
      3_000,
    );
    // B never revoked anything: it did not follow the old record.
    expect(b.log.filter((entry) => entry.startsWith('revoke') || entry.startsWith('drop'))).toEqual([]);
    expect(bGenerations.every((g) => g > before)).toBe(true);
    expect(b.coordinator.ownedPartitions.filter((id) => id.startsWith('t:')).length).toBe(2);
    const stale = [...a.errors, ...b.errors].filter((e) => e.code === 'ERR_STALE_ALLOCATION');
    expect(stale.map((e) => e.message).join('\n')).toMatch(
      new RegExp(`went back to generation 1 after generation ${before}`),
    );
  });

  it('follows a republication below its own generation from the current leader, once the record went back', async () => {
    // A leads but does not hear the allocation record for a while: it plays a leader that saw less than B.
    class Deaf extends MemoryBackend {
      deaf = false;
      override watchRecord(g: string, name: RecordName, listener: RecordListener): Unsubscribe {
        return super.watchRecord(g, name, (record) => {
          if (!(this.deaf && name === 'allocation')) listener(record);
        });
      }
    }
    const a = await group.start('A', { Backend: Deaf });
    const b = await group.start('B');
    await settle(a, b);
    const before = b.coordinator.currentGeneration;
    expect(before).toBeGreaterThan(3);
    a.backend.deaf = true;
    const write = async (generation: number, leader: string, assignment: Record<string, Record<string, number[]>>) => {
      const current = (await group.observer.readRecord(group.name, 'allocation'))!;
      const record = {
        generation,
        leader,
        strategy: 'placement',
        members: [a.coordinator.memberId, b.coordinator.memberId].sort(),
        partitions: ALL,
        assignment,
      };
      expect(
        await group.observer.writeRecord(group.name, 'allocation', JSON.stringify(record), current.version),
      ).not.toBeNull();
    };
    const aId = a.coordinator.memberId;
    const bId = b.coordinator.memberId;

    // The record goes back to generation 1: B keeps its generation and its partitions.
    await write(1, 'an-old-leader', { [aId]: { t: [0, 1, 2, 3] } });
    await sleep(100);
    // A record above it, but not from the current leader (another old one): still not followed.
    await write(2, 'an-old-leader', { [aId]: { t: [0, 1, 2, 3] } });
    await sleep(100);
    expect(b.coordinator.currentGeneration).toBe(before);
    expect(b.log.filter((entry) => entry.startsWith('revoke'))).toEqual([]);

    // The leader, having seen only that record, publishes generation 3 over it: B follows it, below its own.
    await write(3, aId, { [aId]: { t: [0, 1, 2] }, [bId]: { t: [3] } });
    await waitFor('B following generation 3', () => b.coordinator.currentGeneration === 3, 3_000);
    await waitFor('B owning only t:3', () => b.coordinator.ownedPartitions.join() === 't:3', 3_000);
    expect(b.errors.filter((e) => e.code === 'ERR_STALE_ALLOCATION').map((e) => e.message)).toEqual([
      expect.stringMatching(new RegExp(`went back to generation 1 after generation ${before}.*keeps generation`)),
      expect.stringMatching(new RegExp(`went back to generation 2 after generation ${before}.*keeps generation`)),
    ]);

    // Once A hears the record again, it follows it too (above what it saw, it leads on).
    a.backend.deaf = false;
    await group.nudge();
    await waitFor(
      'A and B on one generation again',
      async () => {
        const allocation = await group.allocation();
        return (
          allocation !== undefined &&
          allocation.generation > before &&
          a.coordinator.currentGeneration === allocation.generation &&
          b.coordinator.currentGeneration === allocation.generation
        );
      },
      3_000,
    );
  });

  it('takes a late delivery of an older record for what it is, not for a record that went back', async () => {
    // A's allocation watch delivers 300 ms late; A leads, so it follows what it publishes at once, and hears each
    // record again only afterwards, when it may have published a newer one.
    class LateAllocation extends MemoryBackend {
      override watchRecord(g: string, name: RecordName, listener: RecordListener): Unsubscribe {
        if (name !== 'allocation') return super.watchRecord(g, name, listener);
        return super.watchRecord(g, name, (record) => void sleep(300).then(() => listener(record)));
      }
    }
    const a = await group.start('A', { Backend: LateAllocation });
    const b = await group.start('B');
    await a.coordinator.addPartitions(ALL);
    await waitFor('A leading on a first generation', () => a.coordinator.currentGeneration > 0, 3_000);
    const before = a.coordinator.currentGeneration;
    await group.nudge();
    await waitFor('A publishing the next generation', () => a.coordinator.currentGeneration > before, 3_000);
    await group.nudge();
    await waitFor(
      'A and B on the generation after that',
      async () => {
        const allocation = await group.allocation();
        return (
          allocation !== undefined &&
          allocation.generation >= before + 2 &&
          a.coordinator.currentGeneration === allocation.generation &&
          b.coordinator.currentGeneration === allocation.generation
        );
      },
      3_000,
    );
    await sleep(700);
    expect([...a.errors, ...b.errors].filter((e) => e.code === 'ERR_STALE_ALLOCATION')).toEqual([]);
  });

  it('takes the record its rejoin read for a late one when a newer came meanwhile, not for one that went back', async () => {
    // B's rejoin reads the allocation, then the members; the members read waits until a newer generation arrived.
    const b0 = group.gate();
    class SlowRejoin extends MemoryBackend {
      joins = 0;
      override async join(g: string, info: MemberInfo): Promise<Member> {
        this.joins++;
        return super.join(g, info);
      }
      override async members(g: string): Promise<readonly Member[]> {
        if (this.joins === 2) await b0.wait;
        return super.members(g);
      }
    }
    const a = await group.start('A');
    const b = await group.start('B', { Backend: SlowRejoin });
    await a.coordinator.addPartitions(ALL);
    await waitFor('B on the first generation', () => b.coordinator.ownedPartitions.length === 2, 3_000);

    group.store.expireSession(b.backend.sessionId!);
    // The leader publishes a generation with B's new member; B follows it through its watch while the rejoin waits.
    await waitFor(
      'B following the generation with its new id',
      async () => {
        const allocation = await group.allocation();
        return (
          allocation !== undefined &&
          b.ids.length === 2 &&
          allocation.members.includes(b.coordinator.memberId) &&
          b.coordinator.currentGeneration === allocation.generation
        );
      },
      3_000,
    );
    b0.open();
    await sleep(200);
    expect(b.errors.filter((e) => e.code === 'ERR_STALE_ALLOCATION')).toEqual([]);
    await waitFor('B owning its share', () => b.coordinator.ownedPartitions.length === 2, 3_000);
  });
});
