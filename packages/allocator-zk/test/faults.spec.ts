// Faults injected for real on a private ZooKeeper (its own port and state directory; the shared one is never
// touched), those only ZooKeeper has: a reply lost after the server acted, a session our clock gave up on while the
// server was down, and an ensemble that is not there. The faults every backend meets (a freeze shorter and longer
// than the session timeout, a restart that keeps the data, a partition longer than the session timeout) are cases
// of the conformance suite, driven by the hooks in conformance.spec.ts.
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
