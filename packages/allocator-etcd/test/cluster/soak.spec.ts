// CI's short chaos soak on the cluster stack (npm run soak; packages/test-kit/src/soak/): 2.5 minutes of faults
// drawn from a fixed seed, every fault kind once before any comes again (--cover), against the cluster's three
// brokers and three etcd members, five member processes with mixed handlers and a producer. The
// checker must find nothing lost, never two members on one partition at once, every duplicate explained by a
// crash or a lost session, and the group converged within session + 5 s after every fault. The table goes to the log
// and the run directory (with its timeline.svg) stays under .stack/soak-runs/.
import { soak } from '@kiel/test-kit';

it('a 2.5-minute chaos soak (seed 12, each fault kind in turn): nothing lost, never two owners, every duplicate explained, converged after every fault', async () => {
  const started = Date.now();
  const { dir, result, table } = await soak(['--backend', 'etcd', '--minutes', '2.5', '--seed', '12', '--cover']);
  process.stdout.write(`${table}\nrun directory: ${dir}\nsoak took ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  // At a load average of 40, only 2 or 3 faults fitted in the 2.5 minutes (a restart took a minute); on a quiet
  // machine more do. The checker's verdict is the test.
  expect(result.faults.length).toBeGreaterThanOrEqual(2);
  expect(result.failures).toEqual([]);
}, 900_000);
