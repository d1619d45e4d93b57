// Faults injected for real on a private etcd, those only etcd has: a lease given up while etcd was down and
// extended by it, a connect that waited for a frozen etcd, a compaction while a watch is cut off by a TCP proxy,
// and a member process killed with SIGKILL. The faults every backend meets (a freeze shorter and longer than the
// TTL, a restart that keeps the data, a partition longer than the TTL) are cases of the conformance suite, driven
// by the hooks in conformance.spec.ts.
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { Claim, Member, VersionedRecord } from '@kiel/consumer';
import type { Etcd3 } from 'etcd3';
import { sleep, TcpProxy, waitFor } from '@kiel/test-kit';
import { Backends, randomPrefix, rawClient, rejection } from './helpers';
import { PrivateEtcd } from './private-etcd';

let etcd: PrivateEtcd;
let raw: Etcd3;
let backends: Backends;

beforeAll(async () => {
  etcd = await PrivateEtcd.start();
  raw = rawClient(etcd.hosts);
}, 60_000);

beforeEach(() => {
  backends = new Backends({
    hosts: etcd.hosts,
    prefix: randomPrefix(),
    operationTimeout: 1_000,
    connectTimeout: 1_000,
  });
});

afterEach(async () => {
  // A failed test must not leave the server frozen for the next one.
  await etcd.resume();
  await backends.closeAll();
});

afterAll(async () => {
  raw?.close();
  await etcd?.dispose();
}, 60_000);

const info = (id: string) => ({ id, host: 'faults.test', pid: 1 });

describe('EtcdBackend under faults (private etcd)', () => {
  it('a lease our clock gave up on while etcd was down is revoked by the next connect, though a connect failed meanwhile and etcd extended it', async () => {
    const a = await backends.connected({ ttl: 6 });
    const oldLease = a.sessionId!;
    const entry = await a.join('g', info('a'));
    expect(await a.claim('g', 't:0', 'a')).toBe(true);

    await etcd.stop();
    await waitFor('expired by our own clock', () => a.state === 'expired', 10_000);
    // A connect while etcd is down fails; the lease it gave up on must not be forgotten with it.
    expect((await rejection(a.connect())).error.code).toBe('ERR_BACKEND_UNAVAILABLE');
    await etcd.restart();
    // etcd, leader again, extends every lease by its TTL: the old session's entry and claim would stay 6 s more.
    expect((await raw.leaseClient.leaseTimeToLive({ ID: oldLease })).TTL).not.toBe('-1');
    const reconnectStarted = Date.now();
    for (;;) {
      try {
        await a.connect();
        break;
      } catch (error) {
        if (Date.now() - reconnectStarted > 10_000) throw error;
        await sleep(200);
      }
    }
    expect(a.sessionId).not.toBe(oldLease);
    // Gone at once, not a TTL later: another member may take the claim now.
    expect((await raw.leaseClient.leaseTimeToLive({ ID: oldLease })).TTL).toBe('-1');
    expect(await raw.get(entry.location).string()).toBeNull();
    expect(await a.claim('g', 't:0', 'a')).toBe(true);
  }, 60_000);

  it('a connect that waited for a frozen etcd starts its contact clock at the grant, not at the call', async () => {
    const a = backends.make({ ttl: 6, connectTimeout: 10_000 });
    await etcd.pause();
    const connecting = a.connect();
    await sleep(3_000);
    await etcd.resume();
    await connecting;
    // Contact is the grant's send time: after the resume. Counted from the call, the consumer would find 3 s of
    // silence at once and fence itself (at 2/3 of the TTL) right after joining.
    expect(performance.now() - a.lastContact).toBeLessThan(1_500);
  }, 30_000);

  it('a compaction while a watch is cut off: the watch reads again and misses no change', async () => {
    const proxy = await TcpProxy.start(etcd.port);
    try {
      const watcher = await backends.connected({ hosts: proxy.hosts, ttl: 10 });
      const writer = await backends.connected({ ttl: 10 });
      const records: Array<VersionedRecord | null> = [];
      const members: Array<readonly Member[]> = [];
      watcher.watchRecord('g', 'allocation', (r) => records.push(r));
      watcher.watchMembers('g', (list) => members.push(list));
      let version = await writer.writeRecord('g', 'allocation', '1', null);
      await waitFor('the first value', () => records.at(-1)?.value === '1', 5_000);
      await waitFor('no members', () => members.length > 0, 5_000);

      proxy.cut();
      for (let i = 2; i <= 30; i++) version = await writer.writeRecord('g', 'allocation', String(i), version);
      await writer.join('g', info('writer'));
      const { header } = await raw.get('anything').exec();
      await raw.kv.compact({ revision: header.revision, physical: true });
      // The history the watch would resume from is gone.
      await expect(raw.kv.range({ key: Buffer.from('x'), revision: Number(header.revision) - 5 })).rejects.toThrow(
        /compacted/,
      );
      await sleep(300);
      proxy.restore();

      await waitFor('the last value', () => records.at(-1)?.value === '30', 8_000);
      await waitFor('the writer as a member', () => members.at(-1)?.length === 1, 8_000);
      const values = records.flatMap((r) => (r ? [Number(r.value)] : []));
      expect(values).toEqual([...values].sort((x, y) => x - y));
      // Read again rather than replayed: the compacted states in between were never delivered.
      expect(new Set(values)).toEqual(new Set([1, 30]));
      // Nothing after the compaction is missed either.
      await writer.writeRecord('g', 'allocation', '31', version);
      await waitFor('a value written after the compaction', () => records.at(-1)?.value === '31', 5_000);
    } finally {
      await backends.closeAll();
      await proxy.close();
    }
  }, 40_000);

  it('a member process killed with SIGKILL: its entry and claim vanish after the TTL, then another may claim', async () => {
    const prefix = randomPrefix();
    const observer = await backends.connected({ prefix, ttl: 2 });
    const child = spawn(
      process.execPath,
      [path.join(__dirname, 'fixtures/member-process.js'), etcd.hosts, prefix, 'g'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    try {
      const ready = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          const match = /READY (\d+)/.exec(out);
          if (match) resolve(match[1]);
        });
        child.once('exit', (code) => reject(new Error(`the member process exited early (${code})`)));
      });
      expect(ready).toMatch(/^\d+$/);
      const members: Array<readonly Member[]> = [];
      const claims: Array<Claim | null> = [];
      observer.watchMembers('g', (list) => members.push(list));
      observer.watchClaim('g', 't:0', (claim) => claims.push(claim));
      await waitFor('the child listed', () => members.at(-1)?.length === 1, 5_000);
      await waitFor('the child’s claim', () => claims.at(-1)?.value === 'child', 5_000);
      expect(await observer.claim('g', 't:0', 'observer')).toBe(false);

      const killedAt = Date.now();
      child.kill('SIGKILL');
      await waitFor('the child gone from the members', () => members.at(-1)?.length === 0, 6_000);
      await waitFor('the claim gone', () => claims.at(-1) === null, 6_000);
      const goneAfter = Date.now() - killedAt;
      // etcd expires the lease one TTL (2 s) after the last keepalive, checking every 500 ms.
      expect(goneAfter).toBeGreaterThanOrEqual(1_000);
      expect(goneAfter).toBeLessThan(4_000);
      // Never two owners: the claim was refused while the child held it, and is free now.
      expect(await observer.claim('g', 't:0', 'observer')).toBe(true);
    } finally {
      child.kill('SIGKILL');
      await raw.delete().prefix(prefix);
    }
  }, 30_000);
});
