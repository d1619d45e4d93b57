// Option validation and error mapping: pure logic, no server.
import { BrokenCircuitError } from 'cockatiel';
import {
  EtcdAuthenticationFailedError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCInvalidArgumentError,
  GRPCUnavailableError,
  EtcdWatchStreamEnded,
} from 'etcd3';
import { EtcdBackend, EtcdBackendError } from '../src';
import type { EtcdBackendOptions } from '../src';
import { toBackendError } from '../src/errors';
import { KeyLayout, prefixRangeEnd } from '../src/keys';
import { resolveOptions } from '../src/options';

function configError(options: unknown): EtcdBackendError {
  try {
    new EtcdBackend(options as EtcdBackendOptions);
  } catch (error) {
    return error as EtcdBackendError;
  }
  throw new Error(`new EtcdBackend(${JSON.stringify(options)}) did not throw`);
}

describe('EtcdBackend options', () => {
  it('applies the defaults and normalises hosts to URLs', () => {
    const resolved = resolveOptions({ hosts: '127.0.0.1:2379, etcd-2.example:2379' });
    expect(resolved).toMatchObject({
      hosts: ['http://127.0.0.1:2379', 'http://etcd-2.example:2379'],
      ttl: 10,
      prefix: 'kiel/',
      connectTimeout: 10000,
      operationTimeout: 5000,
      secure: false,
    });
    expect(resolveOptions({ hosts: ['https://[::1]:2379/'] }).hosts).toEqual(['https://[::1]:2379']);
    expect(resolveOptions({ hosts: 'h:1', tls: { ca: 'pem' } }).hosts).toEqual(['https://h:1']);
    expect(resolveOptions({ hosts: 'h:1', prefix: 'apps/orders' }).prefix).toBe('apps/orders/');
    // The ZooKeeper backend's form of credentials works too, split at the first colon.
    expect(resolveOptions({ hosts: 'h:1', auth: 'app:pa:ss' }).auth).toEqual({ user: 'app', password: 'pa:ss' });
    expect(resolveOptions({ hosts: 'h:1', auth: { user: 'app', password: 'x' } }).auth).toEqual({
      user: 'app',
      password: 'x',
    });
  });

  it.each([
    ['no options', undefined],
    ['an empty host string', { hosts: '' }],
    ['an empty host array', { hosts: [] }],
    ['a host without a port', { hosts: 'localhost' }],
    ['a port out of range', { hosts: 'localhost:70000' }],
    ['port zero', { hosts: 'localhost:0' }],
    ['an unknown scheme', { hosts: 'grpc://localhost:2379' }],
    ['a non-string host', { hosts: [2379] }],
    ['mixed schemes', { hosts: ['http://a:1', 'https://b:1'] }],
    ['tls with http hosts', { hosts: 'http://a:1', tls: { ca: 'x' } }],
    ['a cert without its key', { hosts: 'https://a:1', tls: { cert: 'x' } }],
    ['a fractional ttl', { hosts: 'a:1', ttl: 1.5 }],
    ['a zero ttl', { hosts: 'a:1', ttl: 0 }],
    ['a ttl in milliseconds by mistake', { hosts: 'a:1', ttl: 5_000_000 }],
    ['an empty prefix', { hosts: 'a:1', prefix: '' }],
    ['a root prefix', { hosts: 'a:1', prefix: '/' }],
    ['auth without a user', { hosts: 'a:1', auth: { user: '', password: 'x' } }],
    ['auth without a password', { hosts: 'a:1', auth: { user: 'u' } }],
    ['auth as a string without a colon', { hosts: 'a:1', auth: 'user' }],
    ['auth as a string without a user', { hosts: 'a:1', auth: ':password' }],
    ['a negative connectTimeout', { hosts: 'a:1', connectTimeout: -1 }],
    ['an infinite operationTimeout', { hosts: 'a:1', operationTimeout: Infinity }],
    ['a string timeout', { hosts: 'a:1', operationTimeout: '5000' }],
  ])('rejects %s with ERR_INVALID_CONFIG', (_, options) => {
    const error = configError(options);
    expect(error).toBeInstanceOf(EtcdBackendError);
    expect({ code: error.code, retriable: error.retriable }).toEqual({ code: 'ERR_INVALID_CONFIG', retriable: false });
    expect(error.message).toMatch(/^EtcdBackend: /);
  });

  it('starts idle with the requested TTL as its session timeout', () => {
    const backend = new EtcdBackend({ hosts: '127.0.0.1:2379', ttl: 7 });
    expect(backend.state).toBe('idle');
    expect(backend.sessionTimeout).toBe(7000);
    expect(backend.lastContact).toBe(0);
    expect(backend.sessionId).toBeUndefined();
    expect(backend.name).toBe('etcd');
  });
});

describe('error mapping', () => {
  it.each([
    [
      'an unavailable server',
      new GRPCUnavailableError('14 UNAVAILABLE: No connection established'),
      'ERR_BACKEND_UNAVAILABLE',
      true,
    ],
    ['an open circuit breaker', new BrokenCircuitError(), 'ERR_BACKEND_UNAVAILABLE', true],
    // Streams hand over grpc-js errors untyped: a plain Error with the status code.
    [
      'a raw gRPC UNAVAILABLE',
      Object.assign(new Error('14 UNAVAILABLE: reset'), { code: 14 }),
      'ERR_BACKEND_UNAVAILABLE',
      true,
    ],
    [
      'a raw gRPC DEADLINE_EXCEEDED',
      Object.assign(new Error('4 DEADLINE_EXCEEDED'), { code: 4 }),
      'ERR_BACKEND_TIMEOUT',
      true,
    ],
    [
      'a raw invalid token',
      Object.assign(new Error('16 UNAUTHENTICATED: etcdserver: invalid auth token'), { code: 16 }),
      'ERR_BACKEND_AUTH',
      false,
    ],
    ['an ended watch stream', new EtcdWatchStreamEnded(), 'ERR_BACKEND_UNAVAILABLE', true],
    ['a deadline', new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED'), 'ERR_BACKEND_TIMEOUT', true],
    ['a lost lease', new EtcdLeaseInvalidError('123'), 'ERR_SESSION_EXPIRED', true],
    ['bad credentials', new EtcdAuthenticationFailedError('authentication failed'), 'ERR_BACKEND_AUTH', false],
    ['a missing permission', new EtcdPermissionDeniedError('permission denied'), 'ERR_BACKEND_AUTH', false],
    [
      'a missing user name',
      new GRPCInvalidArgumentError('3 INVALID_ARGUMENT: etcdserver: user name is empty'),
      'ERR_BACKEND_AUTH',
      false,
    ],
    ['a leader election', new Error('etcdserver: leader changed'), 'ERR_BACKEND_UNAVAILABLE', true],
    [
      'an unexpected argument error',
      new GRPCInvalidArgumentError('3 INVALID_ARGUMENT: bad'),
      'ERR_BACKEND_UNAVAILABLE',
      false,
    ],
  ])('maps %s', (_, cause, code, retriable) => {
    const error = toBackendError(cause, 'claim', 'kiel/groups/g/owners/t:0');
    expect({ code: error.code, retriable: error.retriable }).toEqual({ code, retriable });
    expect(error.location).toBe('kiel/groups/g/owners/t:0');
    expect(error.message).toContain('etcd claim (kiel/groups/g/owners/t:0)');
    expect(error.cause).toBe(cause);
  });
});

describe('key layout', () => {
  const keys = new KeyLayout('kiel/');

  it('puts every group under <prefix>groups/<group>/', () => {
    expect(keys.member('orders', '4096')).toBe('kiel/groups/orders/members/1000');
    expect(keys.record('orders', 'partitions')).toBe('kiel/groups/orders/partitions');
    expect(keys.record('orders', 'allocation')).toBe('kiel/groups/orders/allocation');
    expect(keys.claim('orders', 'payments:3')).toBe('kiel/groups/orders/owners/payments:3');
  });

  it('escapes / and % in names, so that no group can reach into another', () => {
    expect(keys.membersPrefix('a/members/b')).toBe('kiel/groups/a%2Fmembers%2Fb/members/');
    const prefix = keys.ownersPrefix('g');
    expect(keys.partitionOf(prefix, keys.claim('g', 'odd/topic%:1'))).toBe('odd/topic%:1');
    expect(() => keys.claim('', 't:0')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG' }));
  });

  it('computes etcd prefix range ends', () => {
    expect(prefixRangeEnd(Buffer.from('abc/'))).toEqual(Buffer.from('abc0'));
    expect(prefixRangeEnd(Buffer.from([0x61, 0xff]))).toEqual(Buffer.from([0x62]));
    expect(prefixRangeEnd(Buffer.from([0xff]))).toEqual(Buffer.from([0]));
  });
});
