import type { BackendError, BackendErrorCode } from './types';

/** Whether a caller may retry after an error of each code (with a new session, for `ERR_SESSION_EXPIRED`). */
const RETRIABLE: Readonly<Record<BackendErrorCode, boolean>> = {
  ERR_INVALID_CONFIG: false,
  ERR_BACKEND_UNAVAILABLE: true,
  ERR_BACKEND_TIMEOUT: true,
  ERR_SESSION_EXPIRED: true,
  ERR_BACKEND_AUTH: false,
  ERR_MALFORMED_RECORD: false,
  ERR_BACKEND_CLOSED: false,
};

/** Options of {@link BackendErrorImpl}. */
export interface BackendErrorOptions {
  /** The path or key the error concerns; the message ends with it in parentheses unless it names it already. */
  readonly location?: string;
  /** The underlying error, kept for logs. */
  readonly cause?: unknown;
  /** Overrides the retriable flag that follows from the code, for failures that retrying the same call cannot heal. */
  readonly retriable?: boolean;
  /** The error's `name`, after the backend that raised it (e.g. `ZooKeeperBackendError`). Default `BackendError`. */
  readonly name?: string;
}

/**
 * The one backend error class: every backend here raises it (through `AllocatorBackendBase.error`), named after the
 * backend. `retriable` follows from `code` unless overridden. Callers check `code`, never `instanceof`: two
 * installed copies of a package have two classes, and another backend may implement {@link BackendError} itself.
 */
export class BackendErrorImpl extends Error implements BackendError {
  readonly code: BackendErrorCode;
  readonly retriable: boolean;
  readonly location?: string;

  constructor(code: BackendErrorCode, message: string, options: BackendErrorOptions = {}) {
    const { location, cause } = options;
    super(
      location === undefined || message.includes(location) ? message : `${message} (${location})`,
      cause === undefined ? undefined : { cause },
    );
    this.name = options.name ?? 'BackendError';
    this.code = code;
    this.retriable = options.retriable ?? RETRIABLE[code];
    if (location !== undefined) this.location = location;
  }
}

/** True when `error` is a {@link BackendError} with the given code (duck-typed, so it works across copies). */
export function isBackendError(error: unknown, code?: BackendErrorCode): error is BackendError {
  if (typeof error !== 'object' || error === null) return false;
  const candidate = error as Partial<BackendError>;
  if (typeof candidate.code !== 'string' || typeof candidate.retriable !== 'boolean') return false;
  return code === undefined || candidate.code === code;
}
