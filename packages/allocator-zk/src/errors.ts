import type { BackendError, BackendErrorCode } from '@kiel/consumer';
import { Exception } from 'node-zookeeper-client';

/** Codes that a caller may retry (after reconnecting, for `ERR_SESSION_EXPIRED`). */
const RETRIABLE: ReadonlySet<BackendErrorCode> = new Set([
  'ERR_BACKEND_UNAVAILABLE',
  'ERR_BACKEND_TIMEOUT',
  'ERR_SESSION_EXPIRED',
]);

/** Options of {@link ZooKeeperBackendError}. */
export interface ZooKeeperBackendErrorOptions {
  /** The znode path the error concerns, when there is one. */
  readonly location?: string;
  /** The client exception or error behind this one. */
  readonly cause?: unknown;
  /** Overrides the code's usual retriability, for failures that retrying the same call cannot heal. */
  readonly retriable?: boolean;
}

/**
 * The one error class of `@kiel/allocator-zk`. Check `code` (a stable {@link BackendErrorCode}), not
 * `instanceof`: two installed copies of the package have two distinct classes.
 */
export class ZooKeeperBackendError extends Error implements BackendError {
  override readonly name = 'ZooKeeperBackendError';
  readonly code: BackendErrorCode;
  readonly retriable: boolean;
  readonly location?: string;

  constructor(code: BackendErrorCode, message: string, options: ZooKeeperBackendErrorOptions = {}) {
    super(options.location === undefined ? message : `${message} (${options.location})`, { cause: options.cause });
    this.code = code;
    this.retriable = options.retriable ?? RETRIABLE.has(code);
    if (options.location !== undefined) this.location = options.location;
  }
}

/** A node-zookeeper-client exception, recognised by shape rather than by class. */
export interface ZooKeeperException {
  readonly code: number;
  readonly name: string;
}

/** True when `error` is an exception raised by node-zookeeper-client (or a server reply carrying its code). */
export function isZooKeeperException(error: unknown): error is ZooKeeperException {
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { code?: unknown }).code === 'number' &&
    typeof (error as { name?: unknown }).name === 'string'
  );
}

/** The client exception code of `error`, or undefined when it is not a client exception. */
export function exceptionCode(error: unknown): number | undefined {
  return isZooKeeperException(error) ? error.code : undefined;
}

/**
 * Maps a failure of one ZooKeeper call to our error. Codes the callers handle themselves (NO_NODE, NODE_EXISTS,
 * BAD_VERSION) never reach here; anything unexpected becomes a non-retriable `ERR_BACKEND_UNAVAILABLE` that keeps
 * the client's exception name in its message and as its `cause`.
 */
export function toBackendError(error: unknown, operation: string, location: string): ZooKeeperBackendError {
  if (typeof error === 'object' && error !== null && 'retriable' in error && 'code' in error) {
    return error as ZooKeeperBackendError;
  }
  const code = exceptionCode(error);
  const name = isZooKeeperException(error) ? error.name : String(error);
  const detail = `ZooKeeper ${operation} failed: ${name}`;
  switch (code) {
    case Exception.CONNECTION_LOSS:
    case Exception.OPERATION_TIMEOUT:
      return new ZooKeeperBackendError('ERR_BACKEND_UNAVAILABLE', detail, { location, cause: error });
    case Exception.SESSION_EXPIRED:
      return new ZooKeeperBackendError('ERR_SESSION_EXPIRED', detail, { location, cause: error });
    case Exception.NO_AUTH:
    case Exception.AUTH_FAILED:
    case Exception.INVALID_ACL:
      return new ZooKeeperBackendError('ERR_BACKEND_AUTH', detail, { location, cause: error });
    default:
      // Unexpected server answers (SYSTEM_ERROR, MARSHALLING_ERROR, NOT_EMPTY, a thrown assertion...) will not
      // heal by retrying the same call.
      return new ZooKeeperBackendError('ERR_BACKEND_UNAVAILABLE', detail, { location, cause: error, retriable: false });
  }
}
