// etcd authentication on a private etcd: a root user, and an application user whose role may only read and write
// under the backend's prefix.
import { Etcd3 } from 'etcd3';
import { waitFor } from '@kiel/test-kit';
import { toBackendError } from '../src/errors';
import { Backends, rejection } from './helpers';
import { PrivateEtcd } from './private-etcd';

const PREFIX = 'kiel-auth/';
const ROOT = { username: 'root', password: 'root-secret' };
const APP = { user: 'kiel-app', password: 'app-secret' };

let etcd: PrivateEtcd;
let backends: Backends;

beforeAll(async () => {
  etcd = await PrivateEtcd.start();
  await etcd.enableAuth(APP, PREFIX, ROOT);
}, 60_000);

beforeEach(() => {
  backends = new Backends({ hosts: etcd.hosts, prefix: PREFIX, ttl: 2, connectTimeout: 3_000 });
});

afterEach(() => backends.closeAll());

afterAll(async () => {
  await etcd?.dispose();
}, 60_000);

describe('EtcdBackend with etcd authentication (private etcd)', () => {
  it('refuses a client without credentials with ERR_BACKEND_AUTH, not retriable', async () => {
    const anonymous = backends.make();
    const { error } = await rejection(anonymous.connect());
    expect({ code: error.code, retriable: error.retriable }).toEqual({ code: 'ERR_BACKEND_AUTH', retriable: false });
    expect(anonymous.state).toBe('idle');
  });

  it('refuses a wrong password with ERR_BACKEND_AUTH', async () => {
    const wrong = backends.make({ auth: { user: APP.user, password: 'not-the-password' } });
    const { error } = await rejection(wrong.connect());
    expect({ code: error.code, retriable: error.retriable }).toEqual({ code: 'ERR_BACKEND_AUTH', retriable: false });
  });

  it('works for the application user under its prefix: join, records, claims, watches', async () => {
    const [a, b] = await Promise.all([
      backends.connected({ auth: APP }),
      backends.connected({ auth: `${APP.user}:${APP.password}` }),
    ]);
    const member = await a.join('g', { id: 'a', host: 'auth.test', pid: 1 });
    expect(member.location.startsWith(PREFIX)).toBe(true);
    const seen: string[] = [];
    b.watchRecord('g', 'allocation', (r) => seen.push(r?.value ?? 'null'));
    await waitFor('the initial state', () => seen.length > 0, 5_000);
    await a.writeRecord('g', 'allocation', 'one', null);
    await waitFor('the write', () => seen.at(-1) === 'one', 5_000);
    expect(await a.claim('g', 't:0', 'a')).toBe(true);
    expect(await b.claim('g', 't:0', 'b')).toBe(false);
    expect((await b.members('g')).map((m) => m.info.id)).toEqual(['a']);
  });

  it('the application user cannot touch keys outside its prefix', async () => {
    // Our backend, pointed at a prefix the role does not cover, is refused at connect().
    const outside = backends.make({ auth: APP, prefix: 'elsewhere/' });
    const refused = await rejection(outside.connect());
    expect(refused.error.code).toBe('ERR_BACKEND_AUTH');

    // And a raw client with the same credentials cannot write there; the refusal maps to ERR_BACKEND_AUTH.
    const app = new Etcd3({ hosts: `http://${etcd.hosts}`, auth: { username: APP.user, password: APP.password } });
    try {
      await app.put(`${PREFIX}inside`).value('ok');
      const error = await app
        .put('elsewhere/key')
        .value('no')
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toBeDefined();
      expect(toBackendError(error, 'put', 'elsewhere/key').code).toBe('ERR_BACKEND_AUTH');
    } finally {
      app.close();
    }
  });
});

describe('EtcdBackend with etcd authentication across a restart (private etcd)', () => {
  it('gets a new token after etcd restarts (old tokens die with it): the lease and the watches carry on', async () => {
    const [a, observer] = await Promise.all([
      backends.connected({ auth: APP, ttl: 6 }),
      backends.connected({ auth: APP, ttl: 6 }),
    ]);
    const lease = a.sessionId;
    const seen: string[] = [];
    observer.watchRecord('restart', 'allocation', (r) => seen.push(r?.value ?? 'null'));
    const v1 = await a.writeRecord('restart', 'allocation', 'before', null);
    await waitFor('the first value', () => seen.at(-1) === 'before', 5_000);

    await etcd.stop();
    await waitFor('disconnected', () => a.state === 'disconnected', 4_000);
    await etcd.restart();
    await waitFor('connected again', () => a.state === 'connected', 6_000);
    expect(a.sessionId).toBe(lease);
    await a.writeRecord('restart', 'allocation', 'after', v1);
    await waitFor('the value written after the restart', () => seen.at(-1) === 'after', 6_000);
  }, 30_000);
});
