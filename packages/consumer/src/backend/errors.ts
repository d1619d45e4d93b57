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
  /** The path or key the error concerns. */
  readonly location?: string;
  /** The underlying error, kept for logs. */
  readonly cause?: unknown;
}

/**
 * The backend error class of @kiel/consumer (used by MemoryBackend). `retriable` follows from `code`. Callers check
 * `code`, never `instanceof`: other backend packages have their own classes implementing {@link BackendError}.
 */
export class BackendErrorImpl extends Error implements BackendError {
  override readonly name = 'BackendError';
  readonly code: BackendErrorCode;
  readonly retriable: boolean;
  readonly location?: string;

  constructor(code: BackendErrorCode, message: string, options: BackendErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retriable = RETRIABLE[code];
    if (options.location !== undefined) this.location = options.location;
  }
}

/** True when `error` is a {@link BackendError} with the given code (duck-typed, so it works across copies). */
export function isBackendError(error: unknown, code?: BackendErrorCode): error is BackendError {
  if (typeof error !== 'object' || error === null) return false;
  const candidate = error as Partial<BackendError>;
  if (typeof candidate.code !== 'string' || typeof candidate.retriable !== 'boolean') return false;
  return code === undefined || candidate.code === code;
}
