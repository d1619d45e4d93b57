import diagnosticsChannel from 'node:diagnostics_channel';
import type { TracingChannel } from 'node:diagnostics_channel';
import type { PartitionOffset } from './group/offsets';
import type { Batch, Message } from './consumer/options';

/**
 * Tracing channels of `@kiel/consumer` (`node:diagnostics_channel`). Each name below is a `TracingChannel`: subscribe
 * with `diagnostics_channel.tracingChannel(name).subscribe({ start, end, asyncStart, asyncEnd, error })`, or to one
 * event with `diagnostics_channel.subscribe('tracing:' + name + ':start', fn)`. Every operation publishes `start`,
 * then `end` once its synchronous part returned, then `asyncStart` and `asyncEnd` when it settles (after `error` if it
 * failed): end a span at `asyncEnd`. The same context object travels through all events of one operation, and
 * `result` (or `error`) is set on it before `asyncStart`. Nothing is published, and no context object is made, while
 * nobody subscribes. The channels are process-wide: tell consumers apart by `context.consumer`.
 */
export const channels = {
  /** One Fetch request to one broker, from send to decoded answer (records queued). */
  fetch: 'kiel:consumer:fetch',
  /** One handler call of `run()`: an `eachBatch` call, or one batch worked through by `eachMessage`. */
  handler: 'kiel:consumer:handler',
  /** One `eachMessage` call. Only when subscribed: checked once per batch, so it costs nothing otherwise. */
  message: 'kiel:consumer:message',
  /** One OffsetCommit (GroupedConsumer): background, manual, or a handoff's commit-before-release. */
  commit: 'kiel:consumer:commit',
  /** One generation's handoff on this member, from seeing the allocation until it owns exactly its share. */
  rebalance: 'kiel:consumer:rebalance',
  /** One partition's part of a handoff: a revocation (commit, release) or an assignment (claim, offsets, fetch). */
  handoff: 'kiel:consumer:handoff',
  /** A fenced stretch: from losing contact past the fencing timeout until it is back, the session is lost, or close. */
  fence: 'kiel:consumer:fence',
} as const;

/** Who published: the fields every context object starts with. */
export interface TraceOrigin {
  /** The consumer instance (SingleConsumer or GroupedConsumer): tells several consumers of one process apart. */
  readonly consumer: object;
  readonly clientId: string;
  /** The group id of a GroupedConsumer; undefined for a SingleConsumer. */
  readonly group: string | undefined;
}

/** Context of {@link channels.fetch}. */
export interface FetchTraceContext extends TraceOrigin {
  /** Node id of the broker asked. */
  readonly broker: number;
  /** The partitions asked for, with the offset each is fetched from. */
  readonly partitions: ReadonlyArray<{
    readonly topic: string;
    readonly partition: number;
    readonly fetchOffset: number;
  }>;
  /** Set when it succeeded: what the answer held (undefined when the broker reset the fetch session). */
  result?: FetchTraceResult | undefined;
  error?: unknown;
}

/** What one fetch brought back. */
export interface FetchTraceResult {
  readonly broker: number;
  readonly partitions: number;
  /**
   * Records queued for the application, as the batch headers announce them (records are decoded when the
   * application takes them; compaction can leave fewer).
   */
  readonly records: number;
  /** Record bytes in the answer. */
  readonly bytes: number;
  readonly durationMs: number;
}

/** Context of {@link channels.handler}. */
export interface HandlerTraceContext extends TraceOrigin {
  readonly topic: string;
  readonly partition: number;
  readonly firstOffset: number;
  readonly lastOffset: number;
  readonly highWatermark: number;
  /** The batch handed to the handler (its messages carry their headers, e.g. `traceparent`). */
  readonly batch: Batch<unknown>;
  /** `eachBatch` or `eachMessage`. */
  readonly kind: 'eachBatch' | 'eachMessage';
  /** true when the whole batch was handled, false when it stopped early (revoked, fenced, lost). */
  result?: boolean;
  error?: unknown;
}

/** Context of {@link channels.message}. */
export interface MessageTraceContext extends TraceOrigin {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly message: Message<unknown>;
  error?: unknown;
}

/** Context of {@link channels.commit}. */
export interface CommitTraceContext extends TraceOrigin {
  /** Offsets asked to commit (a retry may drop those no longer owned). */
  readonly offsets: readonly PartitionOffset[];
  /** Set when it succeeded. */
  result?: { readonly committed: readonly PartitionOffset[]; readonly unknown: readonly PartitionOffset[] };
  error?: unknown;
}

/** Context of {@link channels.rebalance}. */
export interface RebalanceTraceContext extends TraceOrigin {
  readonly memberId: string;
  /** The generation being applied (a newer one that supersedes it before it is done updates this field). */
  generation: number;
  /** Set when it is applied: the `rebalance` event's payload. */
  result?: { generation: number; assigned: string[]; revoked: string[]; durationMs: number };
}

/** Context of {@link channels.handoff}. */
export interface HandoffTraceContext extends TraceOrigin {
  readonly memberId: string;
  readonly generation: number;
  readonly topic: string;
  readonly partition: number;
  /** `revoke`: stop, wait for handlers, commit, release the claim. `assign`: claim, OffsetFetch, start fetching. */
  readonly direction: 'revoke' | 'assign';
  /** Set when it ended. */
  result?: HandoffTraceResult;
  error?: unknown;
}

/** How one partition's handoff ended. */
export interface HandoffTraceResult {
  /** `done`; `cancelled` when a newer generation, a lost session or close made it moot. */
  readonly outcome: 'done' | 'cancelled';
  readonly durationMs: number;
  /** For an assignment: how long the claim waited for the previous owner to let go, ms. */
  readonly claimWaitMs: number;
}

/** Context of {@link channels.fence}. */
export interface FenceTraceContext extends TraceOrigin {
  readonly memberId: string;
  readonly reason: string;
  /** Set when the fence ended: how, and after how long. */
  result?: { readonly outcome: 'unfenced' | 'lost' | 'closed'; readonly durationMs: number };
}

// The channel objects are looked up once; `hasSubscribers` is a property read.
export const fetchChannel: TracingChannel<unknown, FetchTraceContext> = diagnosticsChannel.tracingChannel(
  channels.fetch,
);
export const handlerChannel: TracingChannel<unknown, HandlerTraceContext> = diagnosticsChannel.tracingChannel(
  channels.handler,
);
export const messageChannel: TracingChannel<unknown, MessageTraceContext> = diagnosticsChannel.tracingChannel(
  channels.message,
);
export const commitChannel: TracingChannel<unknown, CommitTraceContext> = diagnosticsChannel.tracingChannel(
  channels.commit,
);
export const rebalanceChannel: TracingChannel<unknown, RebalanceTraceContext> = diagnosticsChannel.tracingChannel(
  channels.rebalance,
);
export const handoffChannel: TracingChannel<unknown, HandoffTraceContext> = diagnosticsChannel.tracingChannel(
  channels.handoff,
);
export const fenceChannel: TracingChannel<unknown, FenceTraceContext> = diagnosticsChannel.tracingChannel(
  channels.fence,
);

/**
 * Publishes the opening of an operation that is not one function call (a rebalance, a handoff, a fence): `start`
 * and `end`, as `tracePromise` does when the function returns its promise.
 */
export function openSpan<C extends object>(channel: TracingChannel<unknown, C>, context: C): C {
  channel.start.publish(context);
  channel.end.publish(context);
  return context;
}

/** Publishes the settling of an operation opened with {@link openSpan}: `error` if it failed, `asyncStart`, `asyncEnd`. */
export function closeSpan<C extends object>(channel: TracingChannel<unknown, C>, context: C): void {
  if ((context as { error?: unknown }).error !== undefined) channel.error.publish(context);
  channel.asyncStart.publish(context);
  channel.asyncEnd.publish(context);
}
