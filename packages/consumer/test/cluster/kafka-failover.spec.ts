// Our consumers on a real three-broker cluster (scripts/stack up --cluster): a replicated topic whose partitions are
// led by all three brokers is read through one fetch session per leader; then, while producers keep writing, the
// leader of some partitions is killed (SIGKILL) and restarted, leadership moves back by preferred leader election,
// a partition is reassigned away from its leader (admin API), and a leader is frozen (SIGSTOP) longer than its
// broker session. After each fault the time until messages flow again from the new leader is measured; at the end
// every acknowledged message was handled, and no offset twice.
import type { Admin } from 'kafkajs';
import { GroupedConsumer, MemoryBackend, MemoryStore, SingleConsumer, type KielError } from '../../src';
import type { BaseConsumer } from '../../src/consumer/base';
import type { ClusterNode } from '../../../../scripts/cluster';
import { uniqueName, waitFor } from '@kiel/test-kit';
import {
  BROKERS,
  HandledLog,
  PartitionProducers,
  cluster,
  createSpreadTopic,
  healCluster,
  kafka,
  logEnds,
  measureFault,
  report,
  step,
  waitFullIsr,
  type Recovery,
} from './helpers';

jest.setTimeout(300_000);

const PARTITIONS = 6;
/** Bound on our part of a recovery: the goal is 2 s, measured well under 1 s; two shared cores make thin margins flaky. Without the stuck-fetch check a frozen leader holds its partitions until a metadata refresh happens to drop it (up to 30 s). */
const CONSUMER_RECOVERY_LIMIT_MS = 5_000;

let admin: Admin;
const created: string[] = [];

const node = (id: number) => `kafka-${id}` as ClusterNode;

beforeEach(async () => {
  await healCluster();
});

beforeAll(async () => {
  await healCluster();
  admin = kafka.admin();
  await admin.connect();
});

afterAll(async () => {
  await healCluster().catch(() => undefined);
  await admin.deleteTopics({ topics: created }).catch(() => undefined);
  await admin.disconnect();
});

async function spreadTopic(prefix: string): Promise<string> {
  // LogAppendTime: a record's timestamp is when the leader appended it, so our part of a recovery can be told
  // apart from the producer's.
  const topic = await createSpreadTopic(admin, prefix, PARTITIONS, {
    configs: { 'message.timestamp.type': 'LogAppendTime' },
  });
  created.push(topic);
  return topic;
}

/** Partitions of `topic` led by broker `id` now. */
async function ledBy(topic: string, id: number): Promise<number[]> {
  const md = await cluster.kafkaMetadata([topic]);
  return md.topics[0]!.partitions.filter((p) => p.leader === id).map((p) => p.partition);
}

/** A broker id that leads some partition of `topic` and is not the active controller (a plain broker fault). */
async function leaderNotController(topic: string): Promise<number> {
  const controller = await cluster.kafkaController();
  for (const id of [1, 2, 3]) {
    if (`kafka-${id}` !== controller && (await ledBy(topic, id)).length > 0) return id;
  }
  throw new Error(`no broker other than the controller ${controller} leads a partition of ${topic}`);
}

/** The faults every consumer lives through, in order, while `log` fills; returns the figures. */
async function faultSequence(topic: string, log: HandledLog, label: string): Promise<Recovery[]> {
  const rows: Recovery[] = [];

  // 1. SIGKILL the leader of some partitions, then restart it.
  const victim = await leaderNotController(topic);
  const killed = await ledBy(topic, victim);
  rows.push(
    ...(await measureFault(
      `${label}: SIGKILL kafka-${victim}`,
      topic,
      killed,
      log,
      () => cluster.kill(node(victim)),
      (_p, l) => l.nodeId !== victim,
      victim,
    )),
  );
  step(`restarting kafka-${victim}`);
  await cluster.start(node(victim));
  await waitFullIsr(topic, PARTITIONS);
  step(`kafka-${victim} back in sync`);

  // 2. Preferred leader election: the restarted broker leads its partitions again.
  const md = await cluster.kafkaMetadata([topic]);
  const notPreferred = md.topics[0]!.partitions.filter((p) => p.leader !== p.replicas[0]).map((p) => p.partition);
  expect(notPreferred.length).toBeGreaterThan(0);
  rows.push(
    ...(await measureFault(
      `${label}: preferred election`,
      topic,
      notPreferred,
      log,
      async () => {
        const results = await cluster.electLeaders('preferred', [{ topic, partitions: notPreferred }]);
        expect(results.filter((r) => r.error !== 0 && r.error !== 84)).toEqual([]);
      },
      (p, l) => l.nodeId === md.topics[0]!.partitions.find((x) => x.partition === p)!.replicas[0],
    )),
  );

  // 3. Reassign a partition away from its leader through the admin API (AlterPartitionReassignments).
  const moving = 0;
  const from = (await cluster.kafkaLeader(topic, moving)).nodeId;
  const to = [1, 2, 3].filter((id) => id !== from);
  rows.push(
    ...(await measureFault(
      `${label}: reassign off kafka-${from}`,
      topic,
      [moving],
      log,
      () =>
        admin.alterPartitionReassignments({
          topics: [{ topic, partitionAssignment: [{ partition: moving, replicas: to }] }],
        }),
      (_p, l) => l.nodeId !== from,
    )),
  );

  // 4. SIGSTOP a leader for longer than its broker session (4 s): the controller fences it and moves its
  //    partitions; our fetch to it hangs on an open socket, which the fetcher must give up on.
  const frozen = await leaderNotController(topic);
  const frozenParts = await ledBy(topic, frozen);
  const rowsPause = await measureFault(
    `${label}: SIGSTOP kafka-${frozen} 8 s`,
    topic,
    frozenParts,
    log,
    () => cluster.pause(node(frozen)),
    (_p, l) => l.nodeId !== frozen,
    frozen,
  );
  rows.push(...rowsPause);
  const pausedFor = 8_000 - Math.max(...rowsPause.map((r) => r.flowingMs));
  if (pausedFor > 0) await new Promise((resolve) => setTimeout(resolve, pausedFor));
  await cluster.resume(node(frozen));
  step(`kafka-${frozen} resumed`);
  await waitFullIsr(topic, PARTITIONS);
  step(`kafka-${frozen} back in sync`);
  return rows;
}

/** Stops the producers, waits until everything written was handled, and checks exactly once. */
async function drainAndCheck(topic: string, producers: PartitionProducers, log: HandledLog): Promise<void> {
  step('stopping the producers');
  await producers.stop();
  const ends = await logEnds(admin, topic);
  step(`draining ${ends.join(',')}`);
  const total = ends.reduce((a, b) => a + b, 0);
  await waitFor(`all ${total} messages of ${topic} handled`, () => log.count >= total, 60_000);
  const { duplicates, missing } = log.check(ends);
  expect(missing).toEqual([]);
  expect(duplicates).toEqual([]);
  expect(log.unhandled(producers.acked)).toEqual([]);
  expect(log.count).toBe(total);
}

/** Watches which brokers the consumer fetches from, and what each fetch covered. */
function fetchedFrom(consumer: BaseConsumer<Buffer>): Map<number, number> {
  const byBroker = new Map<number, number>();
  (consumer as unknown as { fetcher: NodeJS.EventEmitter }).fetcher.on(
    'fetch',
    ({ broker, partitions }: { broker: number; partitions: number }) =>
      byBroker.set(broker, Math.max(byBroker.get(broker) ?? 0, partitions)),
  );
  return byBroker;
}

describe('Kafka cluster: SingleConsumer', () => {
  it('reads every partition through one fetch session per leader, and lives through leader faults with 0 lost and 0 duplicated', async () => {
    const topic = await spreadTopic('cluster-single');
    const md = await cluster.kafkaMetadata([topic]);
    expect(new Set(md.topics[0]!.partitions.map((p) => p.leader))).toEqual(new Set([1, 2, 3]));

    const log = new HandledLog(PARTITIONS);
    const producers = new PartitionProducers(topic, PARTITIONS);
    await producers.start();
    const consumer = new SingleConsumer<Buffer>({
      brokers: BROKERS,
      topics: [topic],
      from: 'beginning',
      deserializer: 'raw',
      maxWaitTime: 200,
      retry: { retries: 60, maxBackoff: 500 },
    });
    const errors: KielError[] = [];
    consumer.on('error', (e) => errors.push(e));
    const byBroker = fetchedFrom(consumer);
    const running = consumer.run({
      eachMessage: (m) => log.record(m.partition, m.offset, m.timestamp, m.value.toString()),
    });
    try {
      await waitFor('every partition read', () => log.byPartition.every((l) => l.length > 20), 30_000);
      // One fetch session per leader: each broker was asked for exactly the partitions it leads (2 of 6).
      expect([...byBroker.keys()].sort()).toEqual([1, 2, 3]);
      expect([...byBroker.values()]).toEqual([2, 2, 2]);
      const sessions = (consumer as unknown as { fetcher: { sessions: Map<number, unknown> } }).fetcher.sessions;
      expect([...sessions.keys()].sort()).toEqual([1, 2, 3]);

      const rows = await faultSequence(topic, log, 'single');
      await drainAndCheck(topic, producers, log);
      report('SingleConsumer recoveries', rows);
      for (const r of rows) expect(r.consumerMs).toBeLessThan(CONSUMER_RECOVERY_LIMIT_MS);
      expect(errors.filter((e) => !e.retriable)).toEqual([]);
    } finally {
      await consumer.stop();
      await running;
      await consumer.close();
      await producers.stop().catch(() => undefined);
    }
  });
});

describe('Kafka cluster: GroupedConsumer', () => {
  it('two graceful members live through the same leader faults with 0 lost and 0 duplicated', async () => {
    const topic = await spreadTopic('cluster-grouped');
    const log = new HandledLog(PARTITIONS);
    const producers = new PartitionProducers(topic, PARTITIONS);
    await producers.start();
    const store = new MemoryStore();
    const group = uniqueName('cluster-group');
    const errors: KielError[] = [];
    const members = ['a', 'b'].map((name) => {
      const consumer = new GroupedConsumer<Buffer>({
        brokers: BROKERS,
        group,
        topics: [topic],
        backend: new MemoryBackend({ store, sessionTimeout: 3000 }),
        deserializer: 'raw',
        maxWaitTime: 200,
        retry: { retries: 60, maxBackoff: 500 },
      });
      consumer.on('error', (e) => errors.push(e));
      return { name, consumer };
    });
    for (const m of members) await m.consumer.connect();
    const runs = members.map(({ name, consumer }) =>
      consumer.run({
        eachMessage: (m) => log.record(m.partition, m.offset, m.timestamp, m.value.toString(), name),
      }),
    );
    try {
      await waitFor(
        'both members own partitions',
        () =>
          members.every((m) => m.consumer.assignment.length > 0) &&
          members.reduce((n, m) => n + m.consumer.assignment.length, 0) === PARTITIONS,
        30_000,
      );
      await waitFor('every partition read', () => log.byPartition.every((l) => l.length > 20), 30_000);
      const rows = await faultSequence(topic, log, 'grouped');
      await drainAndCheck(topic, producers, log);
      report('GroupedConsumer recoveries', rows);
      for (const r of rows) expect(r.consumerMs).toBeLessThan(CONSUMER_RECOVERY_LIMIT_MS);
      expect(errors.filter((e) => !e.retriable)).toEqual([]);
    } finally {
      for (const m of members) await m.consumer.stop();
      await Promise.all(runs);
      for (const m of members) await m.consumer.close();
      await producers.stop().catch(() => undefined);
    }
  });
});
