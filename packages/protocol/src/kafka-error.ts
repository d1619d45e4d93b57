import { KAFKA_ERRORS, KAFKA_ERROR_CODES, type KafkaErrorInfo, type KafkaErrorName } from './kafka-errors';

const BY_CODE = new Map<number, KafkaErrorInfo>(KAFKA_ERRORS.map((info) => [info.errorCode, info]));
const BY_NAME = new Map<string, KafkaErrorInfo>(KAFKA_ERRORS.map((info) => [info.name, info]));

/** Kafka's row for a numeric error code, or undefined for a code this table does not know (a newer broker). */
export function kafkaErrorByCode(errorCode: number): KafkaErrorInfo | undefined {
  return BY_CODE.get(errorCode);
}

/** Kafka's row for an error name such as `NOT_LEADER_OR_FOLLOWER`, or undefined. */
export function kafkaErrorByName(name: string): KafkaErrorInfo | undefined {
  return BY_NAME.get(name);
}

/** Options of {@link KafkaError}. */
export interface KafkaErrorOptions {
  /** What was being done, prepended to the message (for example `OffsetCommit orders-3`). */
  context?: string;
  /** The broker's own error message, when the response carries one; it replaces Kafka's generic text. */
  brokerMessage?: string | null;
  cause?: unknown;
}

/**
 * An error code returned by a Kafka broker, as an exception. Decoders never throw it (they return codes as data);
 * callers turn a non-zero code into a KafkaError with {@link kafkaErrorFromCode} when they decide it is an error.
 *
 * Check it with {@link isKafkaError} and its `code` (Kafka's name), not with `instanceof`.
 *
 * @example
 * const error = kafkaErrorFromCode(partition.errorCode, { context: `Fetch ${topic}-${partition.partitionIndex}` });
 * if (error?.retriable) scheduleMetadataRefresh();
 */
export class KafkaError extends Error {
  /** Kafka's name of the error, for example `NOT_LEADER_OR_FOLLOWER`; `UNKNOWN_SERVER_ERROR` for unknown codes. */
  readonly code: KafkaErrorName;
  /** Kafka's numeric code as the broker sent it (kept even when the table does not know it). */
  readonly errorCode: number;
  /** Whether Kafka classes the error as retriable. */
  readonly retriable: boolean;

  constructor(errorCode: number, options: KafkaErrorOptions = {}) {
    const info = BY_CODE.get(errorCode);
    const code = info?.name ?? 'UNKNOWN_SERVER_ERROR';
    const text = options.brokerMessage || info?.message || `unknown Kafka error code ${errorCode}`;
    super(`${options.context ? `${options.context}: ` : ''}${code} (${errorCode}): ${text}`, { cause: options.cause });
    this.name = 'KafkaError';
    this.code = code;
    this.errorCode = errorCode;
    this.retriable = info?.retriable ?? false;
  }
}

/** A {@link KafkaError} for a non-zero code, or null for `NONE` (0). */
export function kafkaErrorFromCode(errorCode: number, options: KafkaErrorOptions = {}): KafkaError | null {
  return errorCode === KAFKA_ERROR_CODES.NONE ? null : new KafkaError(errorCode, options);
}

/** True when `err` is a {@link KafkaError} from any copy of this package. */
export function isKafkaError(err: unknown): err is KafkaError {
  return (
    err instanceof Error &&
    err.name === 'KafkaError' &&
    typeof (err as { code?: unknown }).code === 'string' &&
    typeof (err as { errorCode?: unknown }).errorCode === 'number'
  );
}
