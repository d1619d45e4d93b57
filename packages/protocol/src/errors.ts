/**
 * Errors raised by @kiel/protocol. Check them by `code`, not `instanceof`: two installed copies of this package
 * have two different classes.
 */

/** Stable codes of {@link KafkaProtocolError}. */
export type ProtocolErrorCode =
  /** A length, count or offset points past the end of the buffer. */
  | 'ERR_BUFFER_UNDERFLOW'
  /** An array or map count is negative (other than -1 for null where null is allowed) or absurdly large. */
  | 'ERR_INVALID_COUNT'
  /** A string, bytes or nullable field has an invalid length. */
  | 'ERR_INVALID_LENGTH'
  /** A varint runs past its maximum width. */
  | 'ERR_INVALID_VARINT'
  /** A string is not valid UTF-8 where the protocol requires it. */
  | 'ERR_INVALID_STRING'
  /** A record batch or message carries an unknown magic byte. */
  | 'ERR_UNKNOWN_MAGIC'
  /** A record batch or message names an unknown or unregistered compression codec. */
  | 'ERR_UNKNOWN_CODEC'
  /** A checksum (CRC32C for batches, CRC32 for legacy messages) does not match. */
  | 'ERR_CRC_MISMATCH'
  /** Decompression failed. */
  | 'ERR_DECOMPRESSION'
  /** A value cannot be represented: an offset beyond 2^53 where a number is required, an int out of range. */
  | 'ERR_OUT_OF_RANGE'
  /** The API or version is not implemented by this package, or no version is shared with the broker. */
  | 'ERR_UNSUPPORTED_VERSION'
  /** A value passed to an encoder is invalid (wrong type, missing required field). */
  | 'ERR_INVALID_ARGUMENT'
  /** Well-formed bytes that break a rule of the protocol (for example a record count that does not match). */
  | 'ERR_MALFORMED';

/** The base error of this package: malformed bytes, unsupported versions and bad encoder input. */
export class KafkaProtocolError extends Error {
  /** Stable, machine-readable code. */
  readonly code: ProtocolErrorCode;
  /** Whether retrying the same operation may succeed. Malformed bytes are not retriable as such. */
  readonly retriable: boolean;
  /** Byte offset in the buffer being decoded where the problem was found, when decoding. */
  readonly offset: number | undefined;

  constructor(
    code: ProtocolErrorCode,
    message: string,
    options: { offset?: number; retriable?: boolean; cause?: unknown } = {},
  ) {
    super(options.offset === undefined ? message : `${message} (at byte ${options.offset})`, { cause: options.cause });
    this.name = 'KafkaProtocolError';
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.offset = options.offset;
  }
}

/** True when `err` is a {@link KafkaProtocolError} from any copy of this package. */
export function isKafkaProtocolError(err: unknown): err is KafkaProtocolError {
  return (
    err instanceof Error && err.name === 'KafkaProtocolError' && typeof (err as { code?: unknown }).code === 'string'
  );
}
