// Faults injected for real on a private ZooKeeper (its own port and state directory; the shared one is never
// touched): a server frozen with SIGSTOP, a partition longer than the session timeout (a proxy that stops all
// traffic while the server keeps running), a server restart that keeps its data, and an ensemble that is not there.
import type { Member } from '@kiel/consumer';
import { freePort, sleep, waitFor } from '@kiel/test-kit';
import { Backends, events, ZooKeeperProxy, memberInfo, PrivateZooKeeper } from './helpers';

const ids = (members: readonly Member[]): string[] => members.map((m) => m.info.id);

describe('ZooKeeperBackend under faults (private ZooKeeper)', () => {
  const zk = new PrivateZooKeeper();
  let backends: Backends;

  beforeAll(async () => {
    await zk.start();
  }, 60_000);

  afterAll(() => {
    zk.destroy();
  });

  beforeEach(() => {
    backends = new Backends({ hosts: zk.hosts, rootPath: '/kiel', operationTimeout: 3000, connectTimeout: 5000 });
  });

  afterEach(async () => {
    await backends.closeAll();
  });

  it('a freeze shorter than the session timeout: `disconnected` from our own clock, then the same session back', async () => {
    const sessionTimeout = 6000;
    const member = await backends.open({ sessionTimeout });
    const session = member.sessionId;
    await member.join('short', memberInfo('m'));
    expect(await member.claim('short', 't:0', 'm')).toBe(true);
    const disconnected = events(member, 'disconnected');
    const connected = events(member, 'connected');
    const expired = events(member, 'expired');

    const frozenAt = performance.now();
    zk.pause();
    try {
      // node-zookeeper-client sees nothing wrong with a frozen server; the report must come from our round-trips.
      await waitFor('disconnected', () => disconnected.length > 0, sessionTimeout);
      const detectedAfter = performance.now() - frozenAt;
      expect(detectedAfter).toBeLessThan(sessionTimeout / 2);
      expect(disconnected[0][0].reason).toMatch(/no answer from ZooKeeper/);
      expect(member.state).toBe('disconnected');
      expect(performance.now() - member.lastContact).toBeGreaterThan(sessionTimeout / 3);
    } finally {
      zk.resume();
    }

    await waitFor('connected again', () => connected.length > 0, sessionTimeout);
    expect(connected[0]).toEqual([{ sessionId: session, newSession: false }]);
    expect(member.state).toBe('connected');
    expect(expired).toHaveLength(0);
    expect(ids(await member.members('short'))).toEqual(['m']);
    expect(await member.readClaim('short', 't:0')).toMatchObject({ mine: true });
  });

  it('a freeze longer than the session timeout: `disconnected` well before expiry, `expired` after the resume', async () => {
    const sessionTimeout = 3000;
    const member = await backends.open({ sessionTimeout });
    const oldSession = member.sessionId;
    await member.join('frozen', memberInfo('m'));
    expect(await member.claim('frozen', 't:0', 'm')).toBe(true);
    const disconnected = events(member, 'disconnected');
    const expired = events(member, 'expired');

    const frozenAt = performance.now();
    zk.pause();
    try {
      await waitFor('disconnected', () => disconnected.length > 0, sessionTimeout);
      // The consumer fences itself at 2/3 of the session timeout by default; the report must come before.
      expect(performance.now() - frozenAt).toBeLessThan(sessionTimeout / 2);
      // Nothing can tell the client while the server is frozen: after a whole session timeout of silence the
      // backend counts the session lost on its own clock.
      await waitFor('expired', () => expired.length > 0, 2 * sessionTimeout);
      expect(performance.now() - frozenAt).toBeGreaterThanOrEqual(sessionTimeout);
      expect(expired[0]).toEqual([{ sessionId: oldSession }]);
      expect(member.state).toBe('expired');
    } finally {
      zk.resume();
    }

    const connected = events(member, 'connected');
    await member.connect();
    expect(connected).toEqual([[{ sessionId: member.sessionId, newSession: true }]]);
    expect(member.sessionId).not.toBe(oldSession);
    // Nobody speaks for the old session any more: the server expires it, and its ephemerals go with it.
    await waitFor(
      'the old claim to vanish',
      async () => (await member.readClaim('frozen', 't:0')) === null,
      3 * sessionTimeout,
    );
    expect(await member.members('frozen')).toEqual([]);
  });

  it('a partition longer than the session timeout: `disconnected` well before expiry, then `expired`, then a new session', async () => {
    const proxy = await ZooKeeperProxy.start(zk.port);
    const sessionTimeout = 3000;
    try {
      const member = await backends.open({ hosts: proxy.hosts, sessionTimeout });
      const observer = await backends.open({ sessionTimeout });
      const oldSession = member.sessionId;
      await member.join('long', memberInfo('m'));
      expect(await member.claim('long', 't:0', 'm')).toBe(true);
      const disconnected = events(member, 'disconnected');
      const expired = events(member, 'expired');
      const seen: string[][] = [];
      member.watchMembers('long', (list) => seen.push(ids(list)));
      await waitFor('the first members state', () => seen.length > 0, 5_000);

      const frozenAt = performance.now();
      proxy.freeze();
      await waitFor('disconnected', () => disconnected.length > 0, sessionTimeout);
      // The consumer fences itself at 2/3 of the session timeout by default; the report must come before.
      expect(performance.now() - frozenAt).toBeLessThan(sessionTimeout / 2);

      // The server, which still runs, expires the session: the claim is free for someone else.
      await waitFor(
        'the server to free the claim of the expired session',
        async () => (await observer.readClaim('long', 't:0')) === null,
        3 * sessionTimeout,
      );
      expect(await observer.claim('long', 't:0', 'observer')).toBe(true);
      // The client cannot know while cut off; the backend's own clock counts the session lost after a whole
      // session timeout of silence.
      await waitFor('expired', () => expired.length > 0, 3 * sessionTimeout);
      expect(expired[0]).toEqual([{ sessionId: oldSession }]);

      proxy.thaw();
      await expect(member.claim('long', 't:0', 'm')).rejects.toMatchObject({ code: 'ERR_SESSION_EXPIRED' });

      await member.connect();
      expect(member.sessionId).not.toBe(oldSession);
      expect(await member.claim('long', 't:0', 'm')).toBe(false);
      await member.join('long', memberInfo('m'));
      await waitFor('the watch on the new session', () => seen.at(-1)?.join() === 'm', 5_000);
    } finally {
      await backends.closeAll();
      await proxy.close();
    }
  });

  it('a lost reply never leaves a second member entry or a stray claim', async () => {
    const proxy = await ZooKeeperProxy.start(zk.port);
    const CREATE = 1;
    try {
      const member = await backends.open({ hosts: proxy.hosts, sessionTimeout: 6000 });
      const observer = await backends.open({ sessionTimeout: 6000 });
      const session = member.sessionId;
      // The parent nodes exist already, so that the lost create is the member node itself.
      await observer.join('lost', memberInfo('o'));
      await observer.leave('lost');
      expect(await observer.claim('lost', 't:9', 'o')).toBe(true);
      await observer.release('lost', 't:9');

      // The server creates the sequential member node, but its answer is lost with the connection.
      proxy.loseRepliesFrom(CREATE);
      const joining = member.join('lost', memberInfo('m'));
      await waitFor('the member node to be created', async () => (await observer.members('lost')).length === 1, 5000);
      proxy.reset();
      proxy.loseReplies(false);
      const joined = await joining;
      expect(member.sessionId).toBe(session);
      expect(await observer.members('lost')).toEqual([joined]);
      // And a retry of the whole join by the caller finds the same entry.
      expect(await member.join('lost', memberInfo('m'))).toEqual(joined);

      proxy.loseRepliesFrom(CREATE);
      const claiming = member.claim('lost', 't:0', 'm');
      await waitFor(
        'the claim node to be created',
        async () => (await observer.readClaim('lost', 't:0')) !== null,
        5000,
      );
      proxy.reset();
      proxy.loseReplies(false);
      await expect(claiming).rejects.toMatchObject({ code: 'ERR_BACKEND_UNAVAILABLE', retriable: true });
      // The retry recognises its own claim by the session that owns the node.
      expect(await member.claim('lost', 't:0', 'm')).toBe(true);
      expect(await observer.claim('lost', 't:0', 'o')).toBe(false);
      await member.release('lost', 't:0');
      expect(await observer.readClaim('lost', 't:0')).toBeNull();
    } finally {
      await backends.closeAll();
      await proxy.close();
    }
  });

  it('a restart that keeps the data: the session survives and watches are re-armed', async () => {
    const sessionTimeout = 8000;
    const member = await backends.open({ sessionTimeout });
    const writer = await backends.open({ sessionTimeout });
    const session = member.sessionId;
    await member.join('restart', memberInfo('m'));
    let version = await writer.writeRecord('restart', 'allocation', 'before', null);
    const values: Array<string | null> = [];
    member.watchRecord('restart', 'allocation', (r) => values.push(r?.value ?? null));
    await waitFor('the record', () => values.at(-1) === 'before', 5_000);
    const disconnected = events(member, 'disconnected');
    const connected = events(member, 'connected');

    zk.stop();
    await waitFor('disconnected', () => disconnected.length > 0, sessionTimeout);
    await zk.start();
    await waitFor('connected again', () => connected.length > 0, sessionTimeout);
    expect(connected[0]).toEqual([{ sessionId: session, newSession: false }]);
    expect(ids(await writer.members('restart'))).toEqual(['m']);

    await waitFor('the writer back', () => writer.state === 'connected', sessionTimeout);
    version = await writer.writeRecord('restart', 'allocation', 'after', version);
    expect(version).not.toBeNull();
    await waitFor('the change after the restart', () => values.at(-1) === 'after', 5_000);
  });

  it('a session our clock gave up on while the server was down: the next session removes its entry and claim at once, though the server kept the session', async () => {
    const sessionTimeout = 6000;
    const member = await backends.open({ sessionTimeout });
    const oldSession = member.sessionId;
    await member.join('abandoned', memberInfo('m'));
    expect(await member.claim('abandoned', 't:0', 'm')).toBe(true);
    const expired = events(member, 'expired');

    zk.stop();
    await waitFor('expired by our own clock', () => expired.length > 0, 3 * sessionTimeout);
    // A connect while the server is down fails; what the old session left must not be forgotten with it.
    await expect(member.connect()).rejects.toMatchObject({ code: 'ERR_BACKEND_UNAVAILABLE' });
    await zk.start();
    // A loaded machine may take a while to have the restarted server answer.
    const openedBy = Date.now() + 30_000;
    let observer: Awaited<ReturnType<Backends['open']>> | undefined;
    while (!observer) {
      observer = await backends.open({ sessionTimeout }).catch((error: unknown) => {
        if (Date.now() > openedBy) throw error;
        return undefined;
      });
    }
    // The restarted server gives the old session a whole timeout again: its entry and claim are still there.
    expect(ids(await observer.members('abandoned'))).toEqual(['m']);
    await member.connect();
    expect(member.sessionId).not.toBe(oldSession);
    // Gone at once, not a session timeout later: another member may take the claim now.
    expect(ids(await observer.members('abandoned'))).toEqual([]);
    expect(await observer.readClaim('abandoned', 't:0')).toBeNull();
    expect(await observer.claim('abandoned', 't:0', 'observer')).toBe(true);
  }, 60_000);

  it('an unreachable ensemble: a typed, retriable error within the connect timeout, and nothing left running', async () => {
    const port = await freePort();
    const backend = backends.create({ hosts: `127.0.0.1:${port}`, connectTimeout: 1500 });
    const started = performance.now();
    await expect(backend.connect()).rejects.toMatchObject({ code: 'ERR_BACKEND_UNAVAILABLE', retriable: true });
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(1400);
    expect(elapsed).toBeLessThan(2500);
    expect(backend.state).toBe('idle');
    await backend.close();

    // close() while connect() still waits ends the attempt at once.
    const other = backends.create({ hosts: `127.0.0.1:${port}`, connectTimeout: 5000 });
    const connecting = other.connect();
    await sleep(100);
    const closedAt = performance.now();
    await other.close();
    await expect(connecting).rejects.toMatchObject({ code: 'ERR_BACKEND_CLOSED', retriable: false });
    expect(performance.now() - closedAt).toBeLessThan(1000);
    expect(other.state).toBe('closed');
    await sleep(300);
  });

  it('an ensemble with a dead server: the client moves on to a live one', async () => {
    const dead = await freePort();
    const backend = await backends.open({ hosts: [`127.0.0.1:${dead}`, zk.hosts], sessionTimeout: 4000 });
    expect(backend.state).toBe('connected');
    await backend.join('ensemble', memberInfo('m'));
    expect(ids(await backend.members('ensemble'))).toEqual(['m']);
  });
});
