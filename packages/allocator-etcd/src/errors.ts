import { BackendErrorImpl, isBackendError, type BackendErrorCode, type BackendErrorOptions } from '@kiel/consumer';
import { castGrpcError } from 'etcd3';

/** Options of {@link EtcdBackendError}: the etcd key as `location`, the etcd3 or gRPC error as `cause`. */
export type EtcdBackendErrorOptions = Omit<BackendErrorOptions, 'name'>;

/**
 * The error of @kiel/allocator-etcd: `@kiel/consumer`'s one backend error class, named after this package. Every
 * rejection and every `error` event of {@link EtcdBackend} is one. Check `code` (a {@link BackendErrorCode}), never
 * `instanceof`: two installed copies of this package have two classes.
 */
export class EtcdBackendError extends BackendErrorImpl {
  constructor(code: BackendErrorCode, message: string, options: EtcdBackendErrorOptions = {}) {
    super(code, message, { ...options, name: 'EtcdBackendError' });
  }
}

// The etcd3 error classes, recognised by name: etcd3 casts gRPC errors into classes named after the gRPC status or
// the etcd server message, and checking names keeps this working when two copies of etcd3 are installed.
const UNAVAILABLE_NAMES = new Set([
  'GRPCUnavailableError',
  'GRPCCancelledError',
  'GRPCInternalError',
  'GRPCUnknownError',
  'GRPCResourceExhastedError',
  'GRPCAbortedError',
  'EtcdWatchStreamEnded',
]);
const AUTH_NAMES = new Set([
  'EtcdAuthenticationFailedError',
  'EtcdPermissionDeniedError',
  'EtcdInvalidAuthTokenError',
  'GRPCUnauthenticatedError',
  'EtcdUserNotFoundError',
]);
// etcd messages that mean "the cluster is busy or electing a leader": transient, whatever the gRPC status.
const TRANSIENT_MESSAGES = [
  'etcdserver: leader changed',
  'etcdserver: no leader',
  'etcdserver: request timed out',
  'etcdserver: too many requests',
  'etcdserver: server stopped',
  'etcdserver: not capable',
];
// Refusals that etcd raises as plain errors when auth is on and the client has no usable token.
const AUTH_MESSAGES = [
  'etcdserver: user name is empty',
  'etcdserver: invalid auth token',
  'etcdserver: permission denied',
];

/**
 * Maps whatever etcd3, gRPC or cockatiel threw to an {@link EtcdBackendError}: `operation` (e.g. `claim`) and
 * `location` (the key) go into the message so that a log line says what failed where.
 */
export function toBackendError(error: unknown, operation: string, location?: string): BackendErrorImpl {
  if (error instanceof BackendErrorImpl) return error;
  if (isBackendError(error)) {
    return new EtcdBackendError(error.code, error.message, { location: location ?? error.location, cause: error });
  }
  // Errors from streams reach us as raw gRPC errors (a plain Error with a numeric `code`): type them as etcd3 does.
  const typed = error instanceof Error ? castGrpcError(error) : error;
  const name = typed instanceof Error ? typed.constructor.name : '';
  const message = typed instanceof Error ? typed.message : String(error);
  const where = location === undefined ? '' : ` (${location})`;
  const describe = (what: string) => `etcd ${operation}${where}: ${what}: ${message}`;
  const options = { location, cause: error };

  if ((error as { isBrokenCircuitError?: unknown } | null)?.isBrokenCircuitError === true) {
    return new EtcdBackendError(
      'ERR_BACKEND_UNAVAILABLE',
      describe('every etcd host is failing (circuit open)'),
      options,
    );
  }
  if (name === 'ClientClosedError') {
    return new EtcdBackendError('ERR_BACKEND_CLOSED', describe('the etcd client is closed'), options);
  }
  if (name === 'EtcdLeaseInvalidError') {
    return new EtcdBackendError('ERR_SESSION_EXPIRED', describe('the lease is gone'), options);
  }
  if (AUTH_NAMES.has(name) || AUTH_MESSAGES.some((m) => message.includes(m))) {
    return new EtcdBackendError('ERR_BACKEND_AUTH', describe('refused by etcd authentication'), options);
  }
  if (name === 'GRPCDeadlineExceededError') {
    return new EtcdBackendError('ERR_BACKEND_TIMEOUT', describe('no answer before the deadline'), options);
  }
  if (UNAVAILABLE_NAMES.has(name) || TRANSIENT_MESSAGES.some((m) => message.includes(m))) {
    return new EtcdBackendError('ERR_BACKEND_UNAVAILABLE', describe('etcd is unavailable'), options);
  }
  // Invalid argument, failed precondition and the like: a bug or a server we do not understand. Retrying the same
  // request will not help, so say so.
  return new EtcdBackendError('ERR_BACKEND_UNAVAILABLE', describe('unexpected etcd error'), {
    ...options,
    retriable: false,
  });
}
