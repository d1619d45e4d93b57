/**
 * `@kiel/consumer/internal`: the building blocks under the documented API, for kiel's own packages, CLI, tests and
 * benchmarks: connections and brokers, the cluster's metadata, the coordination core (`PartitionAllocator`), the
 * offset store and the group's record parsers. Not covered by semver: names and signatures
 * change with the code. Applications use `@kiel/consumer`, which this re-exports.
 */
export * from './index';
export { Connection } from './net/connection';
export type { ConnectionOptions, ConnectionEvents } from './net/connection';
export { Broker } from './net/broker';
export type { BrokerConnectionOptions } from './net/broker';
export { Cluster } from './cluster';
export type { ClusterOptions, ClusterEvents, PartitionMetadata } from './cluster';
export { BaseConsumer } from './consumer/base';
export { PartitionAllocator } from './group/partition-allocator';
export type {
  PartitionAllocatorEvents,
  PartitionAllocatorObserver,
  PartitionAllocatorOptions,
  HandoffHooks,
} from './group/partition-allocator';
export { OffsetStore } from './group/offsets';
export type { PartitionOffset } from './group/offsets';
export { DEPARTED_KEEP_MS, parseControl, readClaim } from './group/records';
export { parseMarker } from './group/marker';
