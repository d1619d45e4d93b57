// The end-to-end scenario with real Kafka and the shared ZooKeeper, every member a process of its own: 3
// GroupedConsumers on a 12-partition topic, 30,000 messages produced while they run, a graceful leave, a SIGKILL
// and a join, with the naive, sticky and weighted strategies. The members run the same consumer code as the etcd
// package's run of this scenario (packages/consumer/test/helpers/member-program.js); only the backend line differs.
import path from 'node:path';
import { expectEndToEnd, runEndToEnd, summary, type EndToEndStrategy } from '../../consumer/test/helpers/end-to-end';
import { topics } from '../../consumer/test/helpers/kafka';
import { randomRoot, removeTree, ZK_HOSTS } from './helpers';

const PARTITIONS = 12;
const MESSAGES = 30_000;
/** The members' session timeout, ms: how long the killed member's partitions wait. */
const SESSION_TIMEOUT = 2_000;

const t = topics();
const roots: string[] = [];

afterAll(async () => {
  for (const root of roots) await removeTree(root).catch(() => undefined);
  await t.cleanup();
}, 60_000);

describe('end to end with ZooKeeperBackend: members in separate processes, real Kafka', () => {
  it.each<EndToEndStrategy>(['naive', 'sticky', 'weighted'])(
    '%s: a leave, a SIGKILL and a join while 30,000 messages flow; nothing lost, no overlap, duplicates only from the killed member',
    async (strategy) => {
      const rootPath = randomRoot();
      roots.push(rootPath);
      const report = await runEndToEnd({
        fixture: path.join(__dirname, 'fixtures/group-member-process.js'),
        hosts: ZK_HOSTS,
        namespace: rootPath,
        sessionTimeout: SESSION_TIMEOUT,
        strategy,
        topic: await t.create(`zk-e2e-${strategy}`, PARTITIONS),
        partitions: PARTITIONS,
        messages: MESSAGES,
      });
      process.stdout.write(`zk ${strategy}: ${summary(report)}\n`);
      expectEndToEnd(report, MESSAGES);
    },
    180_000,
  );
});
