// The MemoryStore's fault-injection API (watch delay, dropped watch events, cut-off clients, expiry) and
// MemoryBackend's option checks. The AllocatorBackend contract itself is covered by memory-backend.spec.ts.
import { performance } from 'node:perf_hooks';
import { MemoryBackend, MemoryStore } from '../src';
import type { AllocatorBackend, BackendError, VersionedRecord } from '../src';
import { sleep, waitFor } from '@kiel/test-kit';

const member = (id: string) => ({ id, host: 'localhost', pid: 1 });

describe('MemoryStore fault injection', () => {
  const opened: AllocatorBackend[] = [];
  const open = async (store: MemoryStore, sessionTimeout = 2_000): Promise<MemoryBackend> => {
    const backend = new MemoryBackend({ store, sessionTimeout });
    opened.push(backend);
    await backend.connect();
    return backend;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((b) => b.close()));
  });

  it('setWatchDelay holds every notification back by the delay, in order', async () => {
    const store = new MemoryStore();
    const [writer, watcher] = [await open(store), await open(store)];
    const seen: Array<{ value: string | undefined; at: number }> = [];
    watcher.watchRecord('g', 'allocation', (r) => seen.push({ value: r?.value, at: performance.now() }));
    await waitFor('seen.length === 1', () => seen.length === 1, 1_000);

    store.setWatchDelay(150);
    const writtenAt = performance.now();
    const v1 = await writer.writeRecord('g', 'allocation', 'one', null);
    await writer.writeRecord('g', 'allocation', 'two', v1);
    await sleep(100);
    expect(seen.map((s) => s.value)).toEqual([undefined]);
    await waitFor('seen.length === 3', () => seen.length === 3, 1_000);
    expect(seen.map((s) => s.value)).toEqual([undefined, 'one', 'two']);
    expect(seen[1].at - writtenAt).toBeGreaterThanOrEqual(145);

    store.setWatchDelay(0);
    await writer.writeRecord('g', 'allocation', 'three', (await writer.readRecord('g', 'allocation'))!.version);
    await waitFor('seen.length === 4', () => seen.length === 4, 1_000);
    expect(seen[3].at - seen[2].at).toBeLessThan(150);
  });

  it('takes the watch delay as a constructor option too, and rejects a negative one', async () => {
    const store = new MemoryStore({ watchDelay: 120 });
    const backend = await open(store);
    const subscribedAt = performance.now();
    const calls: number[] = [];
    backend.watchMembers('g', () => calls.push(performance.now()));
    await waitFor('calls.length === 1', () => calls.length === 1, 1_000);
    expect(calls[0] - subscribedAt).toBeGreaterThanOrEqual(115);
    expect(() => new MemoryStore({ watchDelay: -1 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG' }));
    expect(() => store.setWatchDelay(Number.NaN)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG' }));
  });

  it('dropWatchEvents discards the next notifications of the matching kind and group only', async () => {
    const store = new MemoryStore();
    const [writer, watcher] = [await open(store), await open(store)];
    const records: Array<VersionedRecord | null> = [];
    const otherGroup: Array<VersionedRecord | null> = [];
    const members: string[][] = [];
    watcher.watchRecord('g', 'allocation', (r) => records.push(r));
    watcher.watchRecord('other', 'allocation', (r) => otherGroup.push(r));
    watcher.watchMembers('g', (list) => members.push(list.map((m) => m.info.id)));
    await waitFor(
      'records.length === 1 && otherGroup.length === 1 && members.length === 1',
      () => records.length === 1 && otherGroup.length === 1 && members.length === 1,
      1_000,
    );

    store.dropWatchEvents({ count: 1, kind: 'record', group: 'g' });
    const v1 = await writer.writeRecord('g', 'allocation', 'lost', null);
    await writer.writeRecord('other', 'allocation', 'kept', null);
    await writer.join('g', member('w'));
    await waitFor(
      'otherGroup.length === 2 && members.length === 2',
      () => otherGroup.length === 2 && members.length === 2,
      1_000,
    );
    await sleep(50);
    // The dropped change leaves the listener on the old state: that is the fault being injected.
    expect(records).toEqual([null]);
    expect(otherGroup[1]?.value).toBe('kept');
    expect(members[1]).toEqual(['w']);

    await writer.writeRecord('g', 'allocation', 'next', v1);
    await waitFor('records.length === 2', () => records.length === 2, 1_000);
    expect(records[1]?.value).toBe('next');
    expect(() => store.dropWatchEvents({ count: -1 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG' }));
  });

  it('a cut-off client gets ERR_BACKEND_UNAVAILABLE and disconnected, then resumes its session when restored', async () => {
    const store = new MemoryStore();
    const [victim, other] = [await open(store, 1_000), await open(store)];
    const events: string[] = [];
    victim.on('disconnected', () => events.push('disconnected'));
    victim.on('connected', ({ newSession }) => events.push(newSession ? 'connected:new' : 'connected:same'));
    await victim.join('g', member('victim'));
    expect(await victim.claim('g', 't:0', 'x')).toBe(true);
    const seen: string[][] = [];
    victim.watchMembers('g', (list) => seen.push(list.map((m) => m.info.id)));
    await waitFor('seen.length === 1', () => seen.length === 1, 1_000);

    const sessionId = victim.sessionId!;
    store.cutOffSession(sessionId);
    const error = await victim.members('g').then(
      () => undefined,
      (e: BackendError) => e,
    );
    expect(error).toMatchObject({ code: 'ERR_BACKEND_UNAVAILABLE', retriable: true });
    expect(victim.state).toBe('disconnected');
    expect(events).toEqual(['disconnected']);
    const contactAtCut = victim.lastContact;
    await other.join('g', member('other'));
    await sleep(400);
    expect(seen).toEqual([['victim']]);
    expect(victim.lastContact).toBe(contactAtCut);

    store.restoreSession(sessionId);
    await waitFor("victim.state === 'connected'", () => victim.state === 'connected', 1_000);
    expect(events).toEqual(['disconnected', 'connected:same']);
    expect(victim.sessionId).toBe(sessionId);
    expect(victim.lastContact).toBeGreaterThan(contactAtCut);
    await waitFor('seen.length === 2', () => seen.length === 2, 1_000);
    expect(seen[1]).toEqual(['victim', 'other']);
    expect(await other.readClaim('g', 't:0')).toMatchObject({ mine: false });
  });

  it('a client cut off for longer than its session timeout finds its session expired when restored', async () => {
    const store = new MemoryStore();
    const [victim, other] = [await open(store, 200), await open(store)];
    const expired: string[] = [];
    victim.on('expired', ({ sessionId }) => expired.push(sessionId));
    await victim.join('g', member('victim'));
    const sessionId = victim.sessionId!;

    store.cutOffSession(sessionId);
    await waitFor("victim.state === 'disconnected'", () => victim.state === 'disconnected', 1_000);
    await waitFor('!store.sessionIds.includes(sessionId)', () => !store.sessionIds.includes(sessionId), 2_000);
    expect(await other.members('g')).toEqual([]);
    expect(expired).toEqual([]);

    store.restoreSession(sessionId);
    await waitFor("victim.state === 'expired'", () => victim.state === 'expired', 1_000);
    expect(expired).toEqual([sessionId]);
    await expect(victim.join('g', member('victim'))).rejects.toMatchObject({ code: 'ERR_SESSION_EXPIRED' });
    await victim.connect();
    expect(victim.sessionId).not.toBe(sessionId);
    expect((await victim.join('g', member('victim'))).order).toBeGreaterThan(0);
  });

  it('connect() of a cut-off client rejects with ERR_BACKEND_UNAVAILABLE', async () => {
    const store = new MemoryStore();
    const victim = await open(store);
    const sessionId = victim.sessionId!;
    store.cutOffSession(sessionId);
    await expect(victim.connect()).rejects.toMatchObject({ code: 'ERR_BACKEND_UNAVAILABLE' });
    store.restoreSession(sessionId);
    await victim.connect();
    expect(victim.state).toBe('connected');
    expect(victim.sessionId).toBe(sessionId);
  });

  it('a session closed while cut off lives on in the store until its timeout', async () => {
    const store = new MemoryStore();
    const [victim, other] = [await open(store, 200), await open(store)];
    await victim.join('g', member('victim'));
    store.cutOffSession(victim.sessionId!);
    await victim.close();
    expect((await other.members('g')).map((m) => m.info.id)).toEqual(['victim']);
    await waitFor(
      "(await other.members('g')).length === 0",
      async () => (await other.members('g')).length === 0,
      2_000,
    );
  });

  it('expireSession returns false for a session that is not alive; sessionIds lists the live ones', async () => {
    const store = new MemoryStore();
    const a = await open(store);
    expect(store.sessionIds).toEqual([a.sessionId]);
    expect(store.expireSession('no-such-session')).toBe(false);
    expect(store.expireSession(a.sessionId!)).toBe(true);
    expect(store.expireSession(a.sessionId!)).toBe(false);
    expect(store.sessionIds).toEqual([]);
  });
});

describe('MemoryBackend options', () => {
  it('rejects a missing store and a bad session timeout with ERR_INVALID_CONFIG', () => {
    const code = expect.objectContaining({ code: 'ERR_INVALID_CONFIG', retriable: false });
    expect(() => new MemoryBackend({} as never)).toThrow(code);
    expect(() => new MemoryBackend({ store: new MemoryStore(), sessionTimeout: 0 })).toThrow(code);
    expect(() => new MemoryBackend({ store: new MemoryStore(), sessionTimeout: 1.5 })).toThrow(code);
  });

  it('with no error listener, a throwing watch listener becomes a process warning, not a crash', async () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const backend = new MemoryBackend({ store: new MemoryStore() });
    try {
      await backend.connect();
      backend.watchRecord('g', 'allocation', () => {
        throw new Error('listener failure');
      });
      await waitFor('warn.mock.calls.length > 0', () => warn.mock.calls.length > 0, 1_000);
      expect(String(warn.mock.calls[0][0])).toContain('listener failure');
      expect(warn.mock.calls[0][1]).toMatchObject({ code: 'ERR_MALFORMED_RECORD' });
      expect(await backend.readRecord('g', 'allocation')).toBeNull();
    } finally {
      warn.mockRestore();
      await backend.close();
    }
  });

  it('calls before connect() reject with a retriable ERR_BACKEND_UNAVAILABLE', async () => {
    const backend = new MemoryBackend({ store: new MemoryStore() });
    await expect(backend.members('g')).rejects.toMatchObject({ code: 'ERR_BACKEND_UNAVAILABLE', retriable: true });
    await backend.close();
  });

  it('a watch made before connect() delivers once connected', async () => {
    const store = new MemoryStore();
    const backend = new MemoryBackend({ store });
    const calls: number[] = [];
    backend.watchMembers('g', (list) => calls.push(list.length));
    await sleep(20);
    expect(calls).toEqual([]);
    await backend.connect();
    await waitFor('calls.length === 1', () => calls.length === 1, 1_000);
    expect(calls).toEqual([0]);
    await backend.close();
  });
});
