/**
 * Errors raised by @kiel/consumer. Check them by `code`, never `instanceof`: two installed copies of this package
 * have two different classes.
 */

/** Stable codes of {@link KielError}. */
export type KielErrorCode =
  /** An option is missing or invalid; `option` names it. */
  | 'ERR_INVALID_CONFIG'
  /** A connection to a broker failed or closed; requests in flight on it were rejected. Retriable. */
  | 'ERR_CONNECTION'
  /** A request got no answer within its timeout. Retriable. */
  | 'ERR_REQUEST_TIMEOUT'
  /** None of the listed brokers could be reached, or no brokers were given. */
  | 'ERR_NO_BROKERS'
  /** TLS handshake or certificate problem. */
  | 'ERR_TLS'
  /** SASL authentication failed or the mechanism is not enabled on the broker. */
  | 'ERR_SASL'
  /** The broker and this client share no version of an API we need. */
  | 'ERR_UNSUPPORTED_VERSION'
  /** A broker answered with a Kafka error code; `kafkaError` holds the name (e.g. `NOT_LEADER_OR_FOLLOWER`). */
  | 'ERR_KAFKA'
  /** A topic does not exist (and is not being created). */
  | 'ERR_UNKNOWN_TOPIC'
  /** The fetch offset is out of range and the reset policy is `error`. */
  | 'ERR_OFFSET_OUT_OF_RANGE'
  /**
   * The partition's log was truncated below the fetch position (an unclean leader change) and the reset policy is
   * `error`: the partition is paused until the application seeks. `location` names the partition; the consumer's
   * `truncation` event carries the position and the divergence point.
   */
  | 'ERR_LOG_TRUNCATED'
  /** A message value could not be deserialized; the message was skipped and reported. */
  | 'ERR_DESERIALIZE'
  /** A native Kafka consumer group uses the same group id, so simple-consumer offset commits are refused. */
  | 'ERR_GROUP_ID_CONFLICT'
  /** The allocation strategy returned an invalid assignment; the previous allocation was kept. */
  | 'ERR_INVALID_ALLOCATION'
  /**
   * The published allocation went below a generation already followed (the record was deleted, restored from a
   * backup or written by hand). Members keep their partitions; the leader publishes a higher generation over it.
   */
  | 'ERR_STALE_ALLOCATION'
  /**
   * Ownership can no longer be trusted (backend unreachable past the fencing timeout, or session lost). After a lost
   * session it is fatal (not retriable) when the member will not rejoin: `rejoin` is off, or the backend refused for
   * good (closed, credentials refused; `cause` holds its error). Close the consumer, and connect a new one.
   */
  | 'ERR_FENCED'
  /**
   * A handler ran past `handlerTimeout` while its partition was being handed off; `location` names the partition.
   * The partition was handed over with the position handled so far.
   */
  | 'ERR_HANDLER_TIMEOUT'
  /** The partition is being handed to another member: stop handling it (a batch's `signal` reason). */
  | 'ERR_REVOKED'
  /** A listener of an event threw; the emitter went on with its work. `cause` holds what it threw. */
  | 'ERR_LISTENER'
  /** The coordination backend failed an operation (unreachable, timed out); `cause` holds its error. */
  | 'ERR_BACKEND'
  /** A record in the coordination backend is malformed; `location` names it. */
  | 'ERR_MALFORMED_RECORD'
  /**
   * Another live member of the group has this member's `instanceId`, and was still there one session timeout after
   * this one joined: two members cannot share a name. Not retriable with the same name; `location` names its entry.
   */
  | 'ERR_DUPLICATE_INSTANCE'
  /**
   * A record in the coordination backend is in a layout this version cannot read: a newer kiel wrote it. `location`
   * names it. The member keeps what it owns and follows no new allocation until it is upgraded.
   */
  | 'ERR_RECORD_FORMAT'
  /**
   * The allocation is too large to publish even in the compact format (over 1,000,000 bytes, below what ZooKeeper and
   * etcd accept by default). The previous allocation stays in force; split the group.
   */
  | 'ERR_RECORD_TOO_LARGE'
  /** An operation was attempted after close(). */
  | 'ERR_CLOSED'
  /** A broker sent bytes we could not decode. */
  | 'ERR_PROTOCOL';

/** The base error of @kiel/consumer. */
export class KielError extends Error {
  readonly code: KielErrorCode;
  /** Whether the same operation may succeed if retried (after healing, reconnecting or backing off). */
  readonly retriable: boolean;
  /** For ERR_INVALID_CONFIG: the option at fault. */
  readonly option?: string;
  /** For ERR_KAFKA: the Kafka error name, e.g. `NOT_COORDINATOR`. */
  readonly kafkaError?: string;
  /** For ERR_KAFKA: the numeric Kafka error code. */
  readonly errorCode?: number;
  /** The broker, topic-partition, path or key concerned, when there is one. */
  readonly location?: string;

  constructor(
    code: KielErrorCode,
    message: string,
    details: {
      retriable?: boolean;
      option?: string;
      kafkaError?: string;
      errorCode?: number;
      location?: string;
      cause?: unknown;
    } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'KielError';
    this.code = code;
    this.retriable = details.retriable ?? false;
    if (details.option !== undefined) this.option = details.option;
    if (details.kafkaError !== undefined) this.kafkaError = details.kafkaError;
    if (details.errorCode !== undefined) this.errorCode = details.errorCode;
    if (details.location !== undefined) this.location = details.location;
  }
}

/** True when `err` is a {@link KielError} (from any installed copy of this package), optionally of one code. */
export function isKielError(err: unknown, code?: KielErrorCode): err is KielError {
  return (
    err instanceof Error &&
    err.name === 'KielError' &&
    typeof (err as { code?: unknown }).code === 'string' &&
    (code === undefined || (err as unknown as { code: string }).code === code)
  );
}

/** Shorthand for an ERR_INVALID_CONFIG error naming `option`. */
export function invalidConfig(option: string, message: string): KielError {
  return new KielError('ERR_INVALID_CONFIG', `invalid option ${option}: ${message}`, { option });
}
