// Types of scripts/cluster.js, the cluster stack's control module for tests (see that file and the README).

/** A node of the cluster stack. */
export type ClusterNode = 'kafka-1' | 'kafka-2' | 'kafka-3' | 'zk-1' | 'zk-2' | 'zk-3' | 'etcd-1' | 'etcd-2' | 'etcd-3';

export interface KafkaPartitionLeader {
  /** 'kafka-N', or undefined while the partition has no leader. */
  readonly node: ClusterNode | undefined;
  /** The leader's broker id (-1 when none). */
  readonly nodeId: number;
  readonly leaderEpoch: number;
  readonly replicas: number[];
  readonly isr: number[];
}

export interface KafkaMetadata {
  readonly controllerId: number;
  readonly brokers: Array<{ nodeId: number; host: string; port: number }>;
  readonly topics: Array<{
    name: string;
    error: number;
    partitions: Array<{
      partition: number;
      error: number;
      leader: number;
      leaderEpoch: number;
      replicas: number[];
      isr: number[];
      offline: number[];
    }>;
  }>;
}

export const NODES: readonly ClusterNode[];
export const PORT_BASE: number;
export const STATE: string;
export function ensureUp(): Promise<void>;
export function allReady(): Promise<boolean>;
export function hosts(): { kafka: string[]; zk: string; etcd: string };
export function address(node: ClusterNode): string;
export function start(node: ClusterNode): Promise<boolean>;
export function stop(node: ClusterNode): Promise<boolean>;
export function restart(node: ClusterNode): Promise<void>;
export function kill(node: ClusterNode): Promise<void>;
export function pause(node: ClusterNode): Promise<void>;
export function resume(node: ClusterNode): Promise<void>;
export function state(node: ClusterNode): 'running' | 'paused' | 'stopped' | 'zombie';
export function pid(node: ClusterNode): number | undefined;
export function rss(): { total: number; nodes: Record<ClusterNode, number> };
export function kafkaMetadata(topics?: string[]): Promise<KafkaMetadata>;
export function kafkaLeader(topic: string, partition: number): Promise<KafkaPartitionLeader>;
export function kafkaController(): Promise<ClusterNode | undefined>;
export function waitForKafkaLeader(
  topic: string,
  partition: number,
  accept?: (leader: KafkaPartitionLeader) => boolean,
  timeoutMs?: number,
): Promise<KafkaPartitionLeader>;
export function electLeaders(
  type: 'preferred' | 'unclean',
  partitions: Array<{ topic: string; partitions: number[] }>,
): Promise<Array<{ topic: string; partition: number; error: number; message: string | null }>>;
export function zkLeader(): Promise<ClusterNode | undefined>;
export function etcdLeader(): Promise<ClusterNode | undefined>;
export function waitForZkLeader(timeoutMs?: number): Promise<ClusterNode>;
export function waitForEtcdLeader(timeoutMs?: number): Promise<ClusterNode>;
export function waitAllReady(timeoutMs?: number): Promise<true>;
export function kafkaTool(mainClass: string, args: string[]): string;
export function waitFor<T>(
  what: string,
  probe: () => T | Promise<T>,
  timeoutMs?: number,
  intervalMs?: number,
): Promise<Exclude<T, undefined | false>>;
