/**
 * `kiel allocation` shows a stalled partition: GroupInspector reads the partitions' markers from the backend (here the
 * in-process one; the markers' I/O on ZooKeeper and etcd is in the conformance suite) and reports a stall while the
 * member that reported it still holds the claim; the offsets come from the real Kafka of the stack.
 */
import { Kafka, logLevel } from 'kafkajs';
import { MemoryBackend, MemoryStore, formatAllocation } from '@kiel/consumer';
import { allocationReport, renderAllocation } from '../src/commands/allocation';
import { GroupInspector } from '../src/inspect';
import { BROKERS, unique } from './helpers';

const kafka = new Kafka({ clientId: 'kiel-stalled-test', brokers: BROKERS.split(','), logLevel: logLevel.NOTHING });
const admin = kafka.admin();
const topic = unique('kiel-stalled');

beforeAll(async () => {
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
});
afterAll(async () => {
  await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin.disconnect();
});

it('shows a stall reported by the member holding the claim, and no other', async () => {
  const store = new MemoryStore();
  const member = new MemoryBackend({ store });
  const observer = new MemoryBackend({ store });
  const group = unique('kiel-stalled');
  const inspector = new GroupInspector(observer, group, BROKERS.split(','));
  try {
    await Promise.all([member.connect(), observer.connect()]);
    await member.join(group, { id: 'm1', host: 'h', pid: 1 });
    const ids = [0, 1, 2].map((p) => `${topic}:${p}`);
    await member.writeRecord(
      group,
      'allocation',
      formatAllocation({
        generation: 1,
        leader: 'm1',
        strategy: 'naive',
        members: ['m1'],
        partitions: ids,
        assignment: { m1: { [topic]: [0, 1, 2] } },
      }),
      null,
    );
    for (const id of ids) await member.claim(group, id, JSON.stringify({ member: 'm1', generation: 1 }));
    const since = Date.now() - 63_000;
    // Stalled on partition 0 by its holder; a stale report of a member that no longer holds partition 1; partition 2
    // only has an in-flight marker.
    await member.writeMarker(
      group,
      ids[0]!,
      JSON.stringify({ member: 'm1', from: 10, to: 19, losses: 0, stalled: { offset: 12, since, member: 'm1' } }),
    );
    await member.writeMarker(
      group,
      ids[1]!,
      JSON.stringify({ member: 'gone', stalled: { offset: 3, since, member: 'gone' } }),
    );
    await member.writeMarker(group, ids[2]!, JSON.stringify({ member: 'm1', from: 0, to: 4, losses: 0 }));
    await inspector.connectKafka();
    const snapshot = await inspector.snapshot();
    expect(snapshot.partitions.map((p) => p.stalled)).toEqual([
      { member: 'm1', offset: 12, since },
      undefined,
      undefined,
    ]);
    const report = allocationReport(snapshot);
    expect(report.offsets[0]!.stalled).toEqual({ member: 'm1', offset: 12, since });
    expect(renderAllocation(report)).toMatch(
      new RegExp(`stalled: ${topic}:0 at offset 12, no progress for 6\\d\\.\\d s \\(reported by m1\\)`),
    );
    expect(renderAllocation(report)).not.toMatch(`${topic}:1 at offset`);
  } finally {
    inspector.close();
    await Promise.all([member.close(), observer.close()]);
  }
}, 60_000);
