import { BackendErrorImpl, isBackendError, type BackendErrorCode, type BackendErrorOptions } from '@kiel/consumer';
import { Exception } from 'node-zookeeper-client';

/** Options of {@link ZooKeeperBackendError}: the znode path as `location`, the client's exception as `cause`. */
export type ZooKeeperBackendErrorOptions = Omit<BackendErrorOptions, 'name'>;

/**
 * The error of `@kiel/allocator-zk`: `@kiel/consumer`'s one backend error class, named after this package. The
 * message ends with the znode path when there is one. Check `code` (a stable {@link BackendErrorCode}), not
 * `instanceof`: two installed copies of the package have two distinct classes.
 */
export class ZooKeeperBackendError extends BackendErrorImpl {
  constructor(code: BackendErrorCode, message: string, options: ZooKeeperBackendErrorOptions = {}) {
    super(code, message, { ...options, name: 'ZooKeeperBackendError' });
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
export function toBackendError(error: unknown, operation: string, location: string): BackendErrorImpl {
  if (error instanceof BackendErrorImpl) return error;
  if (isBackendError(error)) {
    return new ZooKeeperBackendError(error.code, error.message, { location: error.location ?? location, cause: error });
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
