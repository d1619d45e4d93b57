// The AllocatorBackend contract against the shared etcd of the local stack, checked through a second, raw etcd3
// client where the key layout and the lease bindings matter.
import type { Claim, Member, VersionedRecord } from '@kiel/consumer';
import { waitFor } from '@kiel/test-kit';
import { Backends, randomPrefix, rawClient, recordEvents, rejection, sharedHosts } from './helpers';

const prefix = randomPrefix();
const raw = rawClient(sharedHosts);
const backends = new Backends({ hosts: sharedHosts, prefix, ttl: 2, operationTimeout: 3_000 });
let groupCount = 0;
const group = () => `group-${++groupCount}`;
const info = (id: string) => ({ id, host: 'test.example', pid: 100 });

afterEach(() => backends.closeAll());
afterAll(async () => {
  await raw.delete().prefix(prefix);
  raw.close();
});

describe('EtcdBackend against etcd', () => {
  it('binds member entries and claims to its lease, records to none, under the documented keys', async () => {
    const g = group();
    const a = await backends.connected();
    expect(a.state).toBe('connected');
    expect(a.sessionTimeout).toBe(2000);
    const member = await a.join(g, info('a'));
    const leaseHex = BigInt(a.sessionId!).toString(16);
    expect(member.location).toBe(`${prefix}groups/${g}/members/${leaseHex}`);

    const entry = await raw.get(member.location).exec();
    expect(entry.kvs[0].lease).toBe(a.sessionId);
    expect(JSON.parse(entry.kvs[0].value.toString())).toEqual(info('a'));
    expect(member.order).toBe(Number(entry.kvs[0].create_revision));

    expect(await a.claim(g, 'orders:0', 'claim-a')).toBe(true);
    const claim = await raw.get(`${prefix}groups/${g}/owners/orders:0`).exec();
    expect(claim.kvs[0].lease).toBe(a.sessionId);

    const version = await a.writeRecord(g, 'allocation', '{"generation":1}', null);
    const record = await raw.get(`${prefix}groups/${g}/allocation`).exec();
    expect(record.kvs[0].lease).toBe('0');
    expect(record.kvs[0].mod_revision).toBe(version);

    // The lease is really kept alive: after three TTLs the entry is still there.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    expect(await raw.get(member.location).string()).not.toBeNull();
    expect(a.state).toBe('connected');
  }, 20_000);

  it('orders members by creation and lists them for other sessions; leave removes only its own entry', async () => {
    const g = group();
    const [a, b, c] = await Promise.all([backends.connected(), backends.connected(), backends.connected()]);
    const joined: Member[] = [];
    for (const [backend, id] of [
      [b, 'b'],
      [a, 'a'],
      [c, 'c'],
    ] as const)
      joined.push(await backend.join(g, info(id)));
    expect(joined[0].order).toBeLessThan(joined[1].order);
    expect(joined[1].order).toBeLessThan(joined[2].order);
    expect((await a.members(g)).map((m) => m.info.id)).toEqual(['b', 'a', 'c']);

    // A retried join of the same session returns the same entry.
    expect(await a.join(g, info('a'))).toEqual(joined[1]);
    await a.leave(g);
    await a.leave(g);
    expect((await c.members(g)).map((m) => m.info.id)).toEqual(['b', 'c']);
  });

  it('compare-and-set on records: create once, then only with the current version', async () => {
    const g = group();
    const [a, b] = await Promise.all([backends.connected(), backends.connected()]);
    expect(await a.readRecord(g, 'partitions')).toBeNull();
    const v1 = await a.writeRecord(g, 'partitions', 'one', null);
    expect(v1).toMatch(/^[1-9][0-9]*$/);
    expect(await b.writeRecord(g, 'partitions', 'other', null)).toBeNull();
    const v2 = await b.writeRecord(g, 'partitions', 'two', v1);
    expect(v2).not.toBeNull();
    expect(await a.writeRecord(g, 'partitions', 'stale', v1)).toBeNull();
    // Versions that cannot be mod revisions never match, and `0` never turns into a create.
    expect(await a.writeRecord(g, 'allocation', 'x', '0')).toBeNull();
    expect(await a.writeRecord(g, 'allocation', 'x', 'abc')).toBeNull();
    expect(await a.readRecord(g, 'allocation')).toBeNull();
    expect(await a.readRecord(g, 'partitions')).toEqual({
      value: 'two',
      version: v2,
      location: `${prefix}groups/${g}/partitions`,
    });
  });

  it('claims are exclusive, idempotent for the holder, and released only by it', async () => {
    const g = group();
    const racers = await Promise.all([1, 2, 3, 4].map(() => backends.connected()));
    const results = await Promise.all(racers.map((r, i) => r.claim(g, 'orders:1', `m${i}`)));
    expect(results.filter(Boolean)).toHaveLength(1);
    const winner = racers[results.indexOf(true)];
    const loser = racers[results.indexOf(false)];
    expect(await winner.claim(g, 'orders:1', 'again')).toBe(true);
    await loser.release(g, 'orders:1');
    expect(await loser.readClaim(g, 'orders:1')).toMatchObject({ mine: false });
    expect(await winner.readClaim(g, 'orders:1')).toMatchObject({ mine: true });
    expect([...(await loser.claims(g)).keys()]).toEqual(['orders:1']);
    await winner.release(g, 'orders:1');
    expect(await loser.readClaim(g, 'orders:1')).toBeNull();
  });

  it('watches deliver the current state, then every change, and stop on unsubscribe', async () => {
    const g = group();
    const [writer, observer] = await Promise.all([backends.connected(), backends.connected()]);
    const records: Array<VersionedRecord | null> = [];
    const members: Array<readonly Member[]> = [];
    const claims: Array<Claim | null> = [];
    const stopRecord = observer.watchRecord(g, 'allocation', (r) => records.push(r));
    const stopMembers = observer.watchMembers(g, (m) => members.push(m));
    const stopClaim = observer.watchClaim(g, 't:0', (c) => claims.push(c));
    expect([records.length, members.length, claims.length]).toEqual([0, 0, 0]);
    await waitFor('the initial states', () => records.length > 0 && members.length > 0 && claims.length > 0, 5_000);
    expect([records[0], members[0], claims[0]]).toEqual([null, [], null]);

    let version: string | null = null;
    for (let i = 1; i <= 20; i++) version = await writer.writeRecord(g, 'allocation', String(i), version);
    await writer.join(g, info('writer'));
    await writer.claim(g, 't:0', 'mine');
    await waitFor('the last write', () => records.at(-1)?.value === '20', 5_000);
    await waitFor('the member', () => members.at(-1)?.length === 1, 5_000);
    await waitFor('the claim', () => claims.at(-1)?.value === 'mine', 5_000);
    expect(claims.at(-1)?.mine).toBe(false);
    // Deliveries are per revision and never go back in time.
    const values = records.flatMap((r) => (r ? [Number(r.value)] : []));
    expect(values).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));

    stopRecord();
    stopRecord();
    stopMembers();
    stopClaim();
    const seen = records.length;
    await writer.writeRecord(g, 'allocation', 'after', version);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(records.length).toBe(seen);
  });

  it('a watch started while another client writes: the state it reads, then every later write, never one twice or back in time', async () => {
    // A watch is created before its read (so that etcd sends it each change at once): writes that land between
    // the creation and the read arrive twice, in the read and as events, and must be applied once.
    const g = group();
    const observer = await backends.connected();
    const key = `${prefix}groups/${g}/allocation`;
    let writing = true;
    let last = 0;
    const writer = (async () => {
      while (writing) await raw.put(key).value(String(++last));
    })();
    try {
      for (let round = 0; round < 20; round++) {
        const values: number[] = [];
        const stop = observer.watchRecord(g, 'allocation', (r) => values.push(Number(r?.value ?? 0)));
        await waitFor('a few deliveries', () => values.length >= 5, 5_000);
        stop();
        expect(values).toEqual([...values].sort((x, y) => x - y));
        expect(new Set(values).size).toBe(values.length);
      }
      writing = false;
      await writer;
      const final: number[] = [];
      const stop = observer.watchRecord(g, 'allocation', (r) => final.push(Number(r?.value ?? 0)));
      await waitFor('the final state', () => final.length > 0, 5_000);
      stop();
      expect(final).toEqual([last]);
    } finally {
      writing = false;
      await writer;
    }
  });

  it('delivers once per revision: keys changed by one transaction never show half-applied', async () => {
    const g = group();
    const [a, b, observer] = await Promise.all([backends.connected(), backends.connected(), backends.connected()]);
    await a.join(g, info('a'));
    await b.join(g, info('b'));
    const lists: string[][] = [];
    observer.watchMembers(g, (members) => lists.push(members.map((m) => m.info.id)));
    await waitFor('both members', () => lists.at(-1)?.length === 2, 5_000);
    const before = lists.length;
    // One delete of the whole members prefix: two delete events with the same revision.
    await raw.delete().prefix(`${prefix}groups/${g}/members/`);
    await waitFor('no members', () => lists.at(-1)?.length === 0, 5_000);
    expect(lists.slice(before)).toEqual([[]]);
  });

  it('leaves out a malformed member entry and reports ERR_MALFORMED_RECORD naming its key', async () => {
    const g = group();
    const a = await backends.connected();
    const errors: Array<{ code: string; location?: string; retriable: boolean }> = [];
    a.on('error', (e) => errors.push(e));
    await a.join(g, info('good'));
    const badKey = `${prefix}groups/${g}/members/bad`;
    await raw.put(badKey).value('{"id": "bad", "host": 1');
    const listed = await a.members(g);
    expect(listed.map((m) => m.info.id)).toEqual(['good']);
    expect(errors).toEqual([
      expect.objectContaining({ code: 'ERR_MALFORMED_RECORD', location: badKey, retriable: false }),
    ]);

    const watched: Array<readonly Member[]> = [];
    a.watchMembers(g, (m) => watched.push(m));
    await waitFor('a members delivery', () => watched.length > 0, 5_000);
    expect(watched[0].map((m) => m.info.id)).toEqual(['good']);
    expect(a.state).toBe('connected');
  });

  it('a revoked lease fires `expired` within a keepalive interval; calls reject; connect() grants a new lease', async () => {
    const g = group();
    const victim = await backends.connected();
    const events = recordEvents(victim);
    const first = victim.sessionId!;
    await victim.join(g, info('victim'));
    expect(await victim.claim(g, 't:0', 'v')).toBe(true);

    const revokedAt = Date.now();
    await raw.leaseClient.leaseRevoke({ ID: first });
    await waitFor('expired', () => victim.state === 'expired', 3_000);
    // A keepalive goes out every TTL/4 = 500 ms; its answer says the lease is gone.
    expect(Date.now() - revokedAt).toBeLessThan(1_500);
    expect(events.map((e) => e.event)).toEqual(['disconnected', 'expired']);
    expect(events[1].info).toEqual({ sessionId: first });

    for (const call of [() => victim.join(g, info('victim')), () => victim.claim(g, 't:0', 'v')]) {
      const { error } = await rejection(call());
      expect({ code: error.code, retriable: error.retriable }).toEqual({
        code: 'ERR_SESSION_EXPIRED',
        retriable: true,
      });
    }
    // Persistent records stay readable.
    expect(await victim.readRecord(g, 'allocation')).toBeNull();

    await victim.connect();
    expect(victim.state).toBe('connected');
    expect(victim.sessionId).not.toBe(first);
    expect(events.at(-1)).toMatchObject({
      event: 'connected',
      info: { sessionId: victim.sessionId, newSession: true },
    });
    expect(await victim.claim(g, 't:0', 'v2')).toBe(true);
  });

  it('calls after close reject with ERR_BACKEND_CLOSED, and close revokes the lease at once', async () => {
    const g = group();
    const a = await backends.connected();
    const entry = await a.join(g, info('a'));
    await a.close();
    expect(await raw.get(entry.location).string()).toBeNull();
    const { error } = await rejection(a.members(g));
    expect({ code: error.code, retriable: error.retriable }).toEqual({ code: 'ERR_BACKEND_CLOSED', retriable: false });
    await a.close();
  });

  it('an unreachable cluster rejects connect() with ERR_BACKEND_UNAVAILABLE in bounded time', async () => {
    // Refused at once: nothing listens on port 1.
    const refused = backends.make({ hosts: '127.0.0.1:1', connectTimeout: 2_000 });
    const fast = await rejection(refused.connect());
    expect({ code: fast.error.code, retriable: fast.error.retriable }).toEqual({
      code: 'ERR_BACKEND_UNAVAILABLE',
      retriable: true,
    });
    expect(fast.ms).toBeLessThan(2_500);
    expect(refused.state).toBe('idle');

    // A host name that does not resolve: also a typed error, not a hang (a frozen server: see faults.spec.ts).
    const unknown = backends.make({ hosts: 'no-such-host.invalid:2379', connectTimeout: 2_000 });
    const unresolved = await rejection(unknown.connect());
    expect(unresolved.error.code).toBe('ERR_BACKEND_UNAVAILABLE');
    expect(unresolved.ms).toBeLessThan(2_500);
  });

  it('fails over to a live host when the first one is dead', async () => {
    const g = group();
    const a = backends.make({ hosts: ['127.0.0.1:1', sharedHosts] });
    await a.connect();
    for (let i = 0; i < 5; i++) expect(await a.claim(g, `t:${i}`, 'x')).toBe(true);
    expect((await a.claims(g)).size).toBe(5);
  });
});
