// The ZooKeeperBackend against the shared ZooKeeper of the local stack: the AllocatorBackend contract, plus the
// znode layout kiel uses. Every test works under its own random root path and removes it afterwards.
import * as zookeeper from 'node-zookeeper-client';
import type { Member } from '@kiel/consumer';
import { waitFor } from '@kiel/test-kit';
import {
  Backends,
  closeRaw,
  events,
  memberInfo,
  randomRoot,
  rawClient,
  removeTree,
  SessionExpirer,
  zkCall,
} from './helpers';

const ids = (members: readonly Member[]): string[] => members.map((m) => m.info.id);

describe('ZooKeeperBackend against a real ZooKeeper', () => {
  let root: string;
  let backends: Backends;

  beforeEach(() => {
    root = randomRoot();
    backends = new Backends({ rootPath: root, sessionTimeout: 4000, operationTimeout: 3000, connectTimeout: 5000 });
  });

  afterEach(async () => {
    await backends.closeAll();
    await removeTree(root);
  });

  it('connects with a new session, reports the granted timeout, and closes', async () => {
    const backend = backends.create();
    expect(backend.state).toBe('idle');
    const connected = events(backend, 'connected');
    await backend.connect();
    expect(backend.state).toBe('connected');
    expect(backend.sessionTimeout).toBe(4000);
    expect(backend.sessionId).toMatch(/^0x[0-9a-f]{16}$/);
    expect(connected).toEqual([[{ sessionId: backend.sessionId, newSession: true }]]);
    expect(performance.now() - backend.lastContact).toBeLessThan(1000);
    await Promise.all([backend.connect(), backend.connect()]);
    expect(connected).toHaveLength(1);
    await backend.close();
    expect(backend.state).toBe('closed');
    await expect(backend.join('g', memberInfo('late'))).rejects.toMatchObject({
      code: 'ERR_BACKEND_CLOSED',
      retriable: false,
    });
    await expect(backend.connect()).rejects.toMatchObject({ code: 'ERR_BACKEND_CLOSED' });
  });

  it('calls before connect() reject with a retriable ERR_BACKEND_UNAVAILABLE', async () => {
    const backend = backends.create();
    await expect(backend.members('g')).rejects.toMatchObject({ code: 'ERR_BACKEND_UNAVAILABLE', retriable: true });
  });

  it('keeps kiel’s layout: sequential ephemeral members holding their JSON, ordered by sequence', async () => {
    const [a, b] = await Promise.all([backends.open(), backends.open()]);
    const first = await a.join('orders', memberInfo('a', 2));
    const second = await b.join('orders', memberInfo('b'));
    expect(first.order).toBeLessThan(second.order);
    expect(first.location).toMatch(new RegExp(`^${root}/groups/orders/members/member-\\d{10}$`));

    const raw = await rawClient();
    try {
      const [data, stat] = await new Promise<[Buffer, zookeeper.Stat]>((resolve, reject) =>
        raw.getData(first.location, (err, d, s) => (err ? reject(err) : resolve([d, s]))),
      );
      expect(JSON.parse(data.toString())).toEqual({ id: 'a', host: 'test-host', pid: process.pid, weight: 2 });
      expect(`0x${stat.ephemeralOwner.toString('hex')}`).toBe(a.sessionId);
    } finally {
      await closeRaw(raw);
    }
    expect(await b.members('orders')).toEqual([first, second]);
  });

  it('join is idempotent for a session; leave removes only this session’s entry', async () => {
    const [a, b] = await Promise.all([backends.open(), backends.open()]);
    const once = await a.join('g', memberInfo('a'));
    const again = await a.join('g', memberInfo('a'));
    expect(again).toEqual(once);
    await b.join('g', memberInfo('b'));
    expect(ids(await a.members('g'))).toEqual(['a', 'b']);
    await a.leave('g');
    await a.leave('g');
    expect(ids(await b.members('g'))).toEqual(['b']);
    const rejoined = await a.join('g', memberInfo('a'));
    expect(rejoined.order).toBeGreaterThan(once.order);
    expect(ids(await b.members('g'))).toEqual(['b', 'a']);
  });

  it('records: create-if-absent once, compare-and-set on the znode version, never a blind overwrite', async () => {
    const [a, b] = await Promise.all([backends.open(), backends.open()]);
    expect(await a.readRecord('g', 'allocation')).toBeNull();
    const v0 = await a.writeRecord('g', 'allocation', '{"generation":1}', null);
    expect(v0).not.toBeNull();
    expect(await b.writeRecord('g', 'allocation', '{"generation":99}', null)).toBeNull();
    const read = await b.readRecord('g', 'allocation');
    expect(read).toEqual({ value: '{"generation":1}', version: v0, location: `${root}/groups/g/allocation` });

    const v1 = await b.writeRecord('g', 'allocation', '{"generation":2}', v0);
    expect(v1).not.toBeNull();
    expect(v1).not.toBe(v0);
    expect(await a.writeRecord('g', 'allocation', '{"generation":3}', v0)).toBeNull();
    expect(await a.writeRecord('g', 'allocation', '{"generation":3}', 'not-a-version')).toBeNull();
    expect(await a.writeRecord('g', 'partitions', '[]', '0')).toBeNull();
    expect((await a.readRecord('g', 'allocation'))?.value).toBe('{"generation":2}');
  });

  it('claims: exclusive, ownership from the session, release only by the holder', async () => {
    const [a, b] = await Promise.all([backends.open(), backends.open()]);
    expect(await a.claim('g', 'orders:0', '{"member":"a"}')).toBe(true);
    // A retried create of our own claim finds it ours: no stray claim, no false refusal.
    expect(await a.claim('g', 'orders:0', '{"member":"a"}')).toBe(true);
    expect(await b.claim('g', 'orders:0', '{"member":"b"}')).toBe(false);
    expect(await a.readClaim('g', 'orders:0')).toEqual({
      value: '{"member":"a"}',
      mine: true,
      location: `${root}/groups/g/owners/orders:0`,
    });
    expect(await b.readClaim('g', 'orders:0')).toMatchObject({ mine: false });
    await b.release('g', 'orders:0');
    expect(await b.readClaim('g', 'orders:0')).not.toBeNull();
    expect(await b.claim('g', 'orders:1', '{"member":"b"}')).toBe(true);
    const all = await a.claims('g');
    expect([...all.keys()]).toEqual(['orders:0', 'orders:1']);
    expect(all.get('orders:1')?.mine).toBe(false);
    await a.release('g', 'orders:0');
    expect(await b.readClaim('g', 'orders:0')).toBeNull();
    expect(await b.claim('g', 'orders:0', '{"member":"b"}')).toBe(true);
  });

  it('watches deliver the current state asynchronously, then every change, ending on the latest', async () => {
    const [writer, observer] = await Promise.all([backends.open(), backends.open()]);
    const records: Array<string | null> = [];
    const members: string[][] = [];
    const claims: Array<boolean | null> = [];
    let insideCall = true;
    const stopRecord = observer.watchRecord('w', 'allocation', (r) =>
      records.push(insideCall ? 'SYNC' : (r?.value ?? null)),
    );
    const stopMembers = observer.watchMembers('w', (list) => members.push(ids(list)));
    const stopClaim = observer.watchClaim('w', 't:0', (c) => claims.push(c && c.mine));
    insideCall = false;
    await waitFor('the initial states', () => records.length > 0 && members.length > 0 && claims.length > 0, 5_000);
    expect(records[0]).toBeNull();
    expect(members[0]).toEqual([]);
    expect(claims[0]).toBeNull();

    let version = await writer.writeRecord('w', 'allocation', '0', null);
    for (let i = 1; i <= 30; i++) version = await writer.writeRecord('w', 'allocation', String(i), version);
    await waitFor('the last record', () => records.at(-1) === '30', 5_000);

    await writer.join('w', memberInfo('writer'));
    await observer.join('w', memberInfo('observer'));
    await waitFor('both members', () => members.at(-1)?.join() === 'writer,observer', 5_000);
    await writer.leave('w');
    await waitFor('one member', () => members.at(-1)?.join() === 'observer', 5_000);

    await writer.claim('w', 't:0', 'x');
    await waitFor('the writer’s claim', () => claims.at(-1) === false, 5_000);
    await writer.release('w', 't:0');
    await waitFor('no claim', () => claims.at(-1) === null, 5_000);
    await observer.claim('w', 't:0', 'y');
    await waitFor('the observer’s own claim', () => claims.at(-1) === true, 5_000);

    stopRecord();
    stopRecord();
    stopMembers();
    stopClaim();
    const seen = records.length;
    await writer.writeRecord('w', 'allocation', 'after', version);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(records).toHaveLength(seen);
  });

  it('a malformed member entry is left out and reported with its path; a throwing listener is reported', async () => {
    const observer = await backends.open();
    const good = await backends.open();
    await good.join('m', memberInfo('good'));
    const raw = await rawClient();
    const badPath = `${root}/groups/m/members/member-9999999999`;
    try {
      await zkCall<string>((cb) => raw.create(badPath, Buffer.from('{"id":42'), zookeeper.CreateMode.EPHEMERAL, cb));
      const errors = events(observer, 'error');
      expect(ids(await observer.members('m'))).toEqual(['good']);
      expect(errors.map(([e]) => [e.code, e.location, e.retriable])).toEqual([
        ['ERR_MALFORMED_RECORD', badPath, false],
      ]);

      const stop = observer.watchMembers('m', () => {
        throw new Error('boom');
      });
      await waitFor('the listener error', () => errors.some(([e]) => /boom/.test(e.message)), 5_000);
      stop();
    } finally {
      await closeRaw(raw);
    }
  });

  it('an idle session hears from ZooKeeper at least every sessionTimeout / 4', async () => {
    const b = await backends.open({ sessionTimeout: 4000 });
    // Nothing else talks to the server: only the heartbeat moves lastContact.
    let longest = 0;
    const started = performance.now();
    while (performance.now() - started < 4_000) {
      longest = Math.max(longest, performance.now() - b.lastContact);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(b.state).toBe('connected');
    expect(longest).toBeLessThan(b.sessionTimeout / 4);
  });

  it("a late SESSIONEXPIRED answer to an old session's request does not end the new session", async () => {
    const sessions = new SessionExpirer();
    const victim = await sessions.backend({ rootPath: root, sessionTimeout: 4000, operationTimeout: 3000 });
    try {
      const expired = events(victim, 'expired');
      const connected = events(victim, 'connected');
      await victim.connect();
      // As the group coordinator does: open a new session the moment the old one is reported expired.
      victim.on('expired', () => void victim.connect().catch(() => undefined));
      // Two requests in flight, both answered SESSIONEXPIRED in one chunk: the first answer ends the session and
      // opens a new one before the second is read.
      sessions.proxyOf(victim).expireReplies(2, 4); // getData, what readClaim sends
      const answers = await Promise.all(
        [victim.readClaim('late', 't:0'), victim.readClaim('late', 't:1')].map((call) =>
          call.catch((e: { code?: string }) => e.code),
        ),
      );
      expect(answers).toEqual(['ERR_SESSION_EXPIRED', 'ERR_SESSION_EXPIRED']);
      await waitFor('a new session', () => connected.length === 2, 3_000);
      expect(expired).toHaveLength(1);
      expect(victim.state).toBe('connected');
    } finally {
      await victim.close();
      await sessions.close();
    }
  });

  it('on session expiry: `expired`, ephemerals gone, calls reject; connect() opens a new session and watches resume', async () => {
    const sessions = new SessionExpirer();
    const victim = await sessions.backend({ rootPath: root, sessionTimeout: 4000, operationTimeout: 3000 });
    const observer = await backends.open();
    try {
      await victim.connect();
      const oldSession = victim.sessionId;
      const first = await victim.join('x', memberInfo('victim'));
      expect(await victim.claim('x', 't:0', 'v')).toBe(true);
      const expired = events(victim, 'expired');
      const connected = events(victim, 'connected');
      const seen: string[][] = [];
      victim.watchMembers('x', (list) => seen.push(ids(list)));
      await waitFor('the victim in its own watch', () => seen.at(-1)?.join() === 'victim', 5_000);

      await sessions.expire(victim);
      await waitFor('expired', () => expired.length === 1, 5_000);
      expect(expired[0]).toEqual([{ sessionId: oldSession }]);
      expect(victim.state).toBe('expired');
      expect(await observer.members('x')).toEqual([]);
      expect(await observer.readClaim('x', 't:0')).toBeNull();
      await expect(victim.claim('x', 't:0', 'v')).rejects.toMatchObject({
        code: 'ERR_SESSION_EXPIRED',
        retriable: true,
      });

      await victim.connect();
      expect(victim.sessionId).not.toBe(oldSession);
      expect(connected.at(-1)).toEqual([{ sessionId: victim.sessionId, newSession: true }]);
      const again = await victim.join('x', memberInfo('victim'));
      expect(again.order).toBeGreaterThan(first.order);
      await waitFor('the watch re-armed on the new session', () => seen.at(-1)?.join() === 'victim', 5_000);
      await observer.join('x', memberInfo('observer'));
      await waitFor('a change after the new session', () => seen.at(-1)?.join() === 'victim,observer', 5_000);
    } finally {
      await victim.close();
      await sessions.close();
    }
  });

  it('close() ends the session at once: the others see its entries vanish', async () => {
    const [leaving, observer] = await Promise.all([backends.open(), backends.open()]);
    await leaving.join('c', memberInfo('leaving'));
    await leaving.claim('c', 't:0', 'l');
    const started = performance.now();
    await leaving.close();
    expect(await observer.members('c')).toEqual([]);
    expect(await observer.readClaim('c', 't:0')).toBeNull();
    expect(performance.now() - started).toBeLessThan(2000);
  });
});
