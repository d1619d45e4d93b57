// The end-to-end scenario with real Kafka and the shared etcd, every member a process of its own: 3 GroupedConsumers
// on a 12-partition topic, 30,000 messages produced while they run, a graceful leave, a SIGKILL and a join, with the
// naive, sticky and weighted strategies. The swap test: the members run the same consumer code as the ZooKeeper
// package's run of this scenario (packages/consumer/test/helpers/member-program.js); only the backend line differs.
import path from 'node:path';
import { expectEndToEnd, runEndToEnd, summary, type EndToEndStrategy } from '../../consumer/test/helpers/end-to-end';
import { topics } from '../../consumer/test/helpers/kafka';
import { randomPrefix, rawClient, sharedHosts } from './helpers';

const PARTITIONS = 12;
const MESSAGES = 30_000;
/** The members' lease TTL, ms (etcd grants 2 s at least): how long the killed member's partitions wait. */
const TTL = 2_000;

const t = topics();
const prefixes: string[] = [];

afterAll(async () => {
  const admin = rawClient(sharedHosts);
  for (const prefix of prefixes)
    await admin
      .delete()
      .prefix(prefix)
      .catch(() => undefined);
  admin.close();
  await t.cleanup();
}, 60_000);

describe('end to end with EtcdBackend: members in separate processes, real Kafka', () => {
  it.each<EndToEndStrategy>(['naive', 'sticky', 'weighted'])(
    '%s: a leave, a SIGKILL and a join while 30,000 messages flow; nothing lost, no overlap, duplicates only from the killed member',
    async (strategy) => {
      const prefix = randomPrefix();
      prefixes.push(prefix);
      const report = await runEndToEnd({
        fixture: path.join(__dirname, 'fixtures/group-member-process.js'),
        hosts: sharedHosts,
        namespace: prefix,
        sessionTimeout: TTL,
        strategy,
        topic: await t.create(`etcd-e2e-${strategy}`, PARTITIONS),
        partitions: PARTITIONS,
        messages: MESSAGES,
      });
      process.stdout.write(`etcd ${strategy}: ${summary(report)}\n`);
      expectEndToEnd(report, MESSAGES);
    },
    180_000,
  );
});
