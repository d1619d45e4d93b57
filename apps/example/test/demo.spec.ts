/**
 * `kiel demo --messages 5000` (what `npm run demo -- --messages 5000` runs after building) passes with both
 * backends: workers leave, crash and join while messages flow, and nothing is lost.
 */
import { BROKERS, ETCD, runCli, runtimeWarnings, ZK } from './helpers';

describe.each(['zk', 'etcd'])('kiel demo --backend %s --messages 5000', (backend) => {
  it('loses nothing, and its only duplicates come from the killed worker', async () => {
    const result = await runCli(
      ['demo', '--backend', backend, '--messages', '5000', '--brokers', BROKERS, '--zk', ZK, '--etcd', ETCD],
      150_000,
    );
    if (result.code !== 0) process.stderr.write(result.stderr + result.stdout);
    expect(result.code).toBe(0);
    // The verdict's first table: produced, consumed (unique), duplicates, lost.
    const row = /^produced +consumed \(unique\) +duplicates +lost\n[- ]+\n(\d+) +(\d+) +(\d+) +(\d+)$/m.exec(
      result.stdout,
    );
    expect(row).not.toBeNull();
    const [, produced, consumed, , lost] = row!.map(Number);
    expect(produced).toBe(5000);
    expect(consumed).toBe(5000);
    expect(lost).toBe(0);
    expect(result.stdout).toMatch(/^PASS: 0 lost, \d+ duplicates \(0 unexplained\)$/m);
    // The script ran: a graceful leave, a kill, a join, and rebalances with their timings.
    expect(result.stderr).toContain('w1 stopped gracefully (SIGTERM)');
    expect(result.stderr).toContain('w2 killed (SIGKILL)');
    expect(result.stderr).toContain('w4 added');
    expect(result.stdout).toMatch(/^rebalances \(published allocations\)$/m);
    expect(result.stdout).toMatch(/^w1 +\d+ +\d+ ms$/m);
    // Neither the demo nor the workers it starts print a runtime warning (CI runs this on Node 20 and 24).
    expect(runtimeWarnings(result.stderr + result.stdout)).toEqual([]);
  }, 160_000);
});
