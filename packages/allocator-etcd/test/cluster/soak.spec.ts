// The chaos soak (npm run soak, packages/consumer/test/soak/) for CI: 90 s of faults drawn from a fixed seed on the
// cluster stack's brokers and etcd nodes, with five member processes of mixed handlers and a producer; the
// checker must find nothing lost, no two members on one partition at once, every duplicate explained by a crash
// or a lost session, and the group converged within session + 5 s after every fault. The table goes to the log.
import { soak } from '../../../consumer/test/soak/soak';

it('a 90-second chaos soak (seed 16) on the cluster: nothing lost, never two owners, every duplicate explained, converged after every fault', async () => {
  const { dir, result, table } = await soak(['--backend', 'etcd', '--minutes', '1.5', '--seed', '16']);
  process.stdout.write(`${table}\nrun directory: ${dir}\n`);
  expect(result.faults.length).toBeGreaterThanOrEqual(5);
  expect(result.failures).toEqual([]);
}, 900_000);
