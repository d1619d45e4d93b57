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
export { Connection } from './net/connection';
export type { ConnectionOptions, ConnectionEvents } from './net/connection';
export { Broker } from './net/broker';
export type { BrokerConnectionOptions, SaslOptions } from './net/broker';
export { Cluster } from './cluster';
export type { ClusterOptions, ClusterEvents, PartitionMetadata, RetryOptions } from './cluster';
export type { OffsetReset } from './fetch/fetcher';
export { BaseConsumer } from './consumer/base';
export type { ConsumerEvents, RunHandlers } from './consumer/base';
export { SingleConsumer } from './consumer/single';
export type { SingleConsumerOptions, StartPosition } from './consumer/single';
export { deserializers } from './consumer/options';
export type { BaseConsumerOptions, Batch, Deserializer, Message } from './consumer/options';
export { BackendErrorImpl, isBackendError } from './backend/errors';
export { emitToEach } from './backend/events';
export type { BackendErrorOptions } from './backend/errors';
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
export { parseMarker } from './group/marker';
export type { PartitionMarker, PoisonOptions, StallAction } from './group/marker';
export type { GroupControlState } from './group/control';
export { GroupCoordinator } from './group/coordinator';
export type {
  CoordinatorEvents,
  CoordinatorObserver,
  GroupCoordinatorOptions,
  HandoffHooks,
  TopicPartition,
} from './group/coordinator';
export { OffsetStore } from './group/offsets';
export type { PartitionOffset } from './group/offsets';
export { formatAllocation, parseAllocation, parseControl, MAX_RECORD_BYTES } from './group/records';
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
