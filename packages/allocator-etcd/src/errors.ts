import type { BackendError, BackendErrorCode } from '@kiel/consumer';
import { castGrpcError } from 'etcd3';

/** Whether a caller may retry after an error of each code (with a new lease, for `ERR_SESSION_EXPIRED`). */
const RETRIABLE: Readonly<Record<BackendErrorCode, boolean>> = {
  ERR_INVALID_CONFIG: false,
  ERR_BACKEND_UNAVAILABLE: true,
  ERR_BACKEND_TIMEOUT: true,
  ERR_SESSION_EXPIRED: true,
  ERR_BACKEND_AUTH: false,
  ERR_MALFORMED_RECORD: false,
  ERR_BACKEND_CLOSED: false,
};

/** Options of {@link EtcdBackendError}. */
export interface EtcdBackendErrorOptions {
  /** The etcd key the error concerns. */
  readonly location?: string;
  /** The underlying error (an etcd3 or gRPC error), kept for logs. */
  readonly cause?: unknown;
  /** Overrides the retriable flag that follows from the code. */
  readonly retriable?: boolean;
}

/**
 * The error class of @kiel/allocator-etcd. Every rejection and every `error` event of {@link EtcdBackend} is one.
 * Check `code` (a {@link BackendErrorCode}), never `instanceof`: two installed copies of this package have two
 * classes.
 */
export class EtcdBackendError extends Error implements BackendError {
  override readonly name = 'EtcdBackendError';
  readonly code: BackendErrorCode;
  readonly retriable: boolean;
  readonly location?: string;

  constructor(code: BackendErrorCode, message: string, options: EtcdBackendErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retriable = options.retriable ?? RETRIABLE[code];
    if (options.location !== undefined) this.location = options.location;
  }
}

/** True when `error` already has the {@link BackendError} shape (duck-typed, so it works across copies). */
export function isBackendError(error: unknown): error is BackendError {
  if (typeof error !== 'object' || error === null) return false;
  const candidate = error as Partial<BackendError>;
  return (
    typeof candidate.code === 'string' && candidate.code.startsWith('ERR_') && typeof candidate.retriable === 'boolean'
  );
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
export function toBackendError(error: unknown, operation: string, location?: string): EtcdBackendError {
  if (error instanceof EtcdBackendError) return error;
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
