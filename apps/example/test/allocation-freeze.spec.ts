/**
 * `kiel allocation freeze|unfreeze` and what `kiel allocation` shows of issue 19's state (a freeze, members waited for,
 * moves held back), against the real ZooKeeper and etcd. The record is written here as a leader would publish it, so
 * that the display is checked without a running group.
 */
import { ZooKeeperBackend } from '@kiel/allocator-zk';
import { EtcdBackend } from '@kiel/allocator-etcd';
import type { AllocatorBackend } from '@kiel/consumer';
import { ETCD, runCli, unique, ZK } from './helpers';

const backends = ['--zk', ZK, '--etcd', ETCD];

describe.each([
  ['zk', () => new ZooKeeperBackend({ hosts: ZK })],
  ['etcd', () => new EtcdBackend({ hosts: ETCD })],
])('kiel allocation freeze|unfreeze on %s', (kind, make: () => AllocatorBackend) => {
  let backend: AllocatorBackend;
  beforeAll(async () => {
    backend = make();
    await backend.connect();
  });
  afterAll(() => backend.close());

  it('freezes and unfreezes; allocation shows the freeze and the member waited for with the time left', async () => {
    const group = unique('kiel-cli-freeze');
    const until = Date.now() + 60_000;
    const record = {
      generation: 3,
      leader: 'a',
      strategy: 'naive',
      members: ['a', 'b'],
      partitions: ['t:0', 't:1'],
      assignment: { a: { t: [0] }, b: { t: [1] } },
      waiting: { b: until },
      named: ['a', 'b'],
      throttled: 2,
    };
    expect(await backend.writeRecord(group, 'allocation', JSON.stringify(record), null)).not.toBeNull();

    const frozen = await runCli([
      'allocation',
      'freeze',
      '--group',
      group,
      '--backend',
      kind,
      '--reason',
      'deploy 7',
      ...backends,
    ]);
    expect(frozen.code).toBe(0);
    expect(frozen.stdout).toMatch(/^group \S+ is frozen since \S+ \(deploy 7\)/);

    const json = await runCli(['allocation', '--group', group, '--backend', kind, '--json', ...backends]);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report.control).toEqual({ frozen: true, since: expect.any(Number), reason: 'deploy 7' });
    expect(report.waiting.b).toBeGreaterThan(0);
    expect(report.waiting.b).toBeLessThanOrEqual(60_000);
    expect(report.throttled).toBe(2);
    expect(report.members.b).toEqual(expect.objectContaining({ live: false, waitingMs: report.waiting.b }));
    expect(report.members.a.waitingMs).toBeNull();

    const table = await runCli(['allocation', '--group', group, '--backend', kind, ...backends]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/no, waiting \d+\.\d s/);
    expect(table.stdout).toMatch(/waiting for b to come back: its partitions are idle, and move in \d+\.\d s/);
    expect(table.stdout).toMatch(/converging: 2 moves held back/);
    expect(table.stdout).toMatch(/^FROZEN since .*\(deploy 7\)/);
    expect(table.stdout).toMatch(/^t:1 +b +- \(idle, its owner is waited for\)/m);

    const again = await runCli(['allocation', 'unfreeze', '--group', group, '--backend', kind, '--json', ...backends]);
    expect(JSON.parse(again.stdout)).toEqual({ group, frozen: false });
    const after = await runCli(['allocation', '--group', group, '--backend', kind, ...backends]);
    expect(after.stdout).not.toMatch(/FROZEN/);
  }, 60_000);

  it('refuses a missing --group and a group name with "/"', async () => {
    const missing = await runCli(['allocation', 'freeze', '--backend', kind, ...backends]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/--group/);
    const bad = await runCli(['allocation', 'freeze', '--group', 'a/b', '--backend', kind, ...backends]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/group/);
  }, 60_000);
});
