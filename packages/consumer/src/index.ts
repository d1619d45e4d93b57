/**
 * The documented API of `@kiel/consumer`: the consumers, the backend interface and the memory backend, group
 * operations, the allocation record's codec, metrics and tracing. The building blocks under it (connections, the
 * cluster's metadata, the coordination core, the offset store) are in `@kiel/consumer/internal`.
 */
export type {
  AllocatorBackend,
  AllocatorBackendEvents,
  BackendError,
  BackendErrorCode,
  BackendState,
  BackendSupports,
  Claim,
  ClaimListener,
  Member,
  MemberInfo,
  MembersListener,
  RecordListener,
  RecordName,
  RecordVersion,
  Unsubscribe,
  VersionedRecord,
} from './backend/types';

export { KielError, isKielError } from './errors';
export type { KielErrorCode } from './errors';
export type { OffsetReset } from './fetch/fetcher';
export type { SaslOptions } from './net/broker';
export type { RetryOptions } from './cluster';
export type { TopicPartition } from '@kiel/allocators';
export type { ConsumerEvents, RunHandlers } from './consumer/base';
export { SingleConsumer } from './consumer/single';
export type { SingleConsumerOptions, StartPosition } from './consumer/single';
export { deserializers } from './consumer/options';
export type { BaseConsumerOptions, Batch, Deserializer, Message } from './consumer/options';
export { BackendErrorImpl, isBackendError } from './backend/errors';
export type { BackendErrorOptions } from './backend/errors';
export { AllocatorBackendBase, parseMemberEntry } from './backend/base';
export { emitToEach } from './backend/events';
export { MemoryBackend, MemoryStore } from './backend/memory';
export type {
  DropWatchEventsOptions,
  MemoryBackendOptions,
  MemoryStoreOptions,
  MemoryWatchKind,
} from './backend/memory';
export { GroupedConsumer } from './consumer/grouped';
export type { CloseOptions, GroupedConsumerEvents, GroupedConsumerOptions } from './consumer/grouped';
export { freezeGroup, unfreezeGroup, groupControl } from './group/control';
export type { PartitionMarker, PoisonOptions, StallAction } from './group/marker';
export type { GroupControlState } from './group/control';
export { formatAllocation, parseAllocation, MAX_RECORD_BYTES } from './group/records';
export type { AllocationRecord, ClaimRecord, ControlRecord } from './group/records';
export { channels } from './diagnostics';
export type {
  CommitTraceContext,
  FenceTraceContext,
  FetchTraceContext,
  FetchTraceResult,
  HandlerTraceContext,
  HandoffTraceContext,
  HandoffTraceResult,
  MessageTraceContext,
  RebalanceTraceContext,
  TraceOrigin,
} from './diagnostics';
export type { ConsumerMetrics, GroupedConsumerMetrics, MetricsWindow, PartitionMetrics } from './metrics';
