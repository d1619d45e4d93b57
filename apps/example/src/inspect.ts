import { parsePartitionId } from '@kiel/allocators';
import { IsolationLevel, KAFKA_ERROR_CODES, ListOffsetsTimestamp } from '@kiel/protocol';
import {
  Cluster,
  KielError,
  OffsetStore,
  parseAllocation,
  parseControl,
  parseMarker,
  readClaim,
  type AllocationRecord,
  type AllocatorBackend,
  type Claim,
  type ControlRecord,
  type GroupControlState,
  type Member,
  type VersionedRecord,
} from '@kiel/consumer/internal';

/** One partition of the group as the inspector sees it. */
export interface PartitionView {
  /** `topic:partition`. */
  id: string;
  topic: string;
  partition: number;
  /** The member the published allocation gives it to, or null when the allocation does not cover it. */
  owner: string | null;
  /** The member whose claim is on it right now (it may still be the previous owner during a handoff). */
  claim: { member: string; generation: number } | null;
  /** The group's committed offset in Kafka (the next offset to read), or null when nothing was committed. */
  committed: number | null;
  /** The partition's high watermark (ListOffsets, latest). */
  highWatermark: number;
  /** `highWatermark - committed`, or null when nothing was committed (as Kafka's own tool shows "-"). */
  lag: number | null;
  /**
   * The partition's handler made no progress for the member's `stallTimeout` (the partition's marker in the backend
   * says so, and that member still holds the claim): who reported it, the offset it is stuck on, and since when
   * (`Date.now()`). Absent otherwise.
   */
  stalled?: { member: string; offset: number; since: number };
}

/** One member of the group as the inspector sees it. */
export interface MemberView {
  id: string;
  /** Whether its member entry exists now (its ZooKeeper session or etcd lease is alive). */
  live: boolean;
  /** In the published allocation (false: joined, not yet allocated). */
  allocated: boolean;
  host?: string;
  pid?: number;
  weight?: number;
  /**
   * A named member (`instanceId`) whose session ended and whose partitions the leader keeps for it
   * (`rebalanceDelay`): milliseconds left before they move (0 once the deadline has passed and the leader is about
   * to publish). Null when nobody waits for it. Its partitions are idle meanwhile.
   */
  waitingMs: number | null;
  /** Its partitions in the published allocation, `topic:partition`. */
  partitions: string[];
  /** How many of those its claims already cover. */
  claimed: number;
  /** Sum of the lag of its partitions (partitions without a committed offset count 0). */
  lag: number;
  /**
   * Last contact. A live entry means the backend heard from the member within its session timeout (ZooKeeper
   * session, etcd lease). Beyond that the backend keeps no timestamp, so the inspector adds the last time it saw a
   * committed offset of the member's partitions advance: milliseconds ago, null until it has seen one (a one-shot
   * `kiel allocation` sees none; `--watch` and the dashboard do).
   */
  lastCommitMsAgo: number | null;
  /** Messages per second committed on its partitions since the previous snapshot (null on the first). */
  rate: number | null;
  /** Messages this inspector saw it commit since it started watching (the sum of committed-offset advances). */
  committedTotal: number;
}

/** What the inspector reads in one go. */
export interface GroupSnapshot {
  group: string;
  /** `Date.now()` when it was taken. */
  at: number;
  /** The published allocation, or null when the group has none. */
  allocation: Pick<AllocationRecord, 'generation' | 'leader' | 'strategy' | 'members'> | null;
  members: MemberView[];
  partitions: PartitionView[];
  /** Sum of every partition's lag. */
  lag: number;
  /** Whether the group is frozen (`kiel allocation freeze`): the leader publishes nothing new until unfrozen. */
  control: GroupControlState;
  /** Members waited for (`rebalanceDelay`): member → milliseconds left before their partitions move. */
  waiting: Record<string, number>;
  /** Moves held back by `maxMovesPerRebalance` in the published allocation (0: it is the strategy's own). */
  throttled: number;
}

/** The freeze state of a control record (absent: not frozen). */
export function controlState(control: ControlRecord | null): GroupControlState {
  const frozen = control?.frozen;
  if (!frozen) return { frozen: false };
  return { frozen: true, since: frozen.since, ...(frozen.reason !== undefined ? { reason: frozen.reason } : {}) };
}

/** Parses a stored control record (null: none, so not frozen); a malformed one is an ERR_MALFORMED_RECORD. */
export function parseControlRecord(stored: VersionedRecord | null): ControlRecord | null {
  return stored ? parseControl(stored.value, stored.location) : null;
}

/** Flattens `{ member: { topic: [p] } }` into `topic:partition` ids. */
export function partitionsOf(assignment: AllocationRecord['assignment'], member: string): string[] {
  const topics = assignment[member] ?? {};
  return Object.entries(topics).flatMap(([topic, ps]) => (ps as readonly number[]).map((p) => `${topic}:${p}`));
}

/** Reads a claim's value (`{member, generation}`); null when it is not one. */
export function parseClaimValue(claim: Claim): { member: string; generation: number } | null {
  return readClaim(claim.value);
}

/**
 * Parses the allocation record text with the consumer's own parser (either record layout, the compact one too); a
 * malformed record is an ERR_MALFORMED_RECORD naming where it lives.
 */
export function parseAllocationText(text: string, location: string): AllocationRecord {
  return parseAllocation(text, location);
}

/**
 * Reads a group's state from its backend (members, allocation, claims) and from Kafka (committed offsets with
 * OffsetFetch, high watermarks with ListOffsets), without joining the group or writing anything. Keeps what it needs
 * between snapshots to tell rates and the last commit time of each member.
 */
export class GroupInspector {
  private readonly cluster: Cluster;
  private offsets: OffsetStore;
  private previous: { at: number; committed: Map<string, number> } | undefined;
  private readonly lastCommitAt = new Map<string, number>();
  private readonly committedTotal = new Map<string, number>();

  constructor(
    readonly backend: AllocatorBackend,
    readonly group: string,
    brokers: readonly string[],
  ) {
    this.cluster = new Cluster({ brokers, clientId: 'kiel-inspect', retry: { retries: 3, maxBackoff: 1_000 } });
    this.offsets = new OffsetStore(this.cluster, group, 'kiel-inspect');
  }

  /** Connects to Kafka (the backend is connected by its owner). */
  connectKafka(): Promise<void> {
    return this.cluster.connect();
  }

  /** Closes the Kafka connections (not the backend). */
  close(): void {
    this.cluster.close();
  }

  /** `Date.now()` of the snapshot that first saw a commit of `member` advance an offset, if any. */
  lastCommitOf(member: string): number | undefined {
    return this.lastCommitAt.get(member);
  }

  /** Reads the allocation record; null when the group has none. */
  async allocation(): Promise<AllocationRecord | null> {
    const stored = await this.backend.readRecord(this.group, 'allocation');
    return stored ? parseAllocationText(stored.value, stored.location) : null;
  }

  /** Takes one snapshot. */
  async snapshot(): Promise<GroupSnapshot> {
    const [record, live, claims, control, markers] = await Promise.all([
      this.allocation(),
      this.backend.members(this.group),
      this.backend.claims(this.group),
      this.backend.readRecord(this.group, 'control').then(parseControlRecord),
      this.backend.markers(this.group),
    ]);
    return this.build(record, live, claims, control, markers);
  }

  /**
   * Builds a snapshot from backend state already read (the dashboard reads it through watches). `control` is the
   * group's control record (null: none).
   */
  async build(
    record: AllocationRecord | null,
    live: readonly Member[],
    claims: ReadonlyMap<string, Claim>,
    control: ControlRecord | null,
    markers: ReadonlyMap<string, string> = new Map(),
  ): Promise<GroupSnapshot> {
    const at = Date.now();
    const owners = new Map<string, string>();
    if (record) for (const m of record.members) for (const id of partitionsOf(record.assignment, m)) owners.set(id, m);
    const ids = [...new Set([...(record?.partitions ?? []), ...owners.keys(), ...claims.keys()])].sort(
      comparePartitions,
    );
    const parts = ids.map((id) => parsePartitionId(id));
    const [committed, watermarks] = await Promise.all([this.committed(parts), this.highWatermarks(parts)]);

    const partitions: PartitionView[] = ids.map((id, i) => {
      const { topic, partition } = parts[i]!;
      const offset = committed.get(id)?.offset ?? -1;
      const highWatermark = watermarks.get(id) ?? 0;
      const claim = claims.get(id);
      // A stall report counts while its member still holds the claim (it may have crashed, or handed the partition off).
      const reported = stalledOf(markers.get(id), id);
      const stalled = reported && claim && parseClaimValue(claim)?.member === reported.member ? reported : undefined;
      return {
        ...(stalled ? { stalled } : {}),
        id,
        topic,
        partition,
        owner: owners.get(id) ?? null,
        claim: claim ? (parseClaimValue(claim) ?? { member: '?', generation: -1 }) : null,
        committed: offset >= 0 ? offset : null,
        highWatermark,
        lag: offset >= 0 ? Math.max(0, highWatermark - offset) : null,
      };
    });

    // Who moved which offsets since the last snapshot: the member the commit names, else the claim holder (else the
    // owner).
    const known = new Set([...(record?.members ?? []), ...live.map((m) => m.info.id), ...this.lastCommitAt.keys()]);
    for (const c of claims.values()) {
      const holder = parseClaimValue(c)?.member;
      if (holder) known.add(holder);
    }
    const moved = new Map<string, number>();
    const prev = this.previous;
    for (const p of partitions) {
      const before = prev?.committed.get(p.id);
      if (p.committed === null || before === undefined || p.committed <= before) continue;
      // The commit's metadata names its member (`committed by <id>`); older clients wrote something else.
      const named = committed.get(p.id)?.by;
      const by = named !== null && named !== undefined && known.has(named) ? named : (p.claim?.member ?? p.owner);
      if (by === null) continue;
      moved.set(by, (moved.get(by) ?? 0) + (p.committed - before));
      this.committedTotal.set(by, (this.committedTotal.get(by) ?? 0) + (p.committed - before));
      this.lastCommitAt.set(by, at);
    }
    const seconds = prev ? (at - prev.at) / 1000 : 0;
    this.previous = {
      at,
      committed: new Map(partitions.filter((p) => p.committed !== null).map((p) => [p.id, p.committed!])),
    };

    const waiting: Record<string, number> = {};
    for (const [id, until] of Object.entries(record?.waiting ?? {})) waiting[id] = Math.max(0, until - at);
    const liveById = new Map(live.map((m) => [m.info.id, m.info]));
    const memberIds = [...new Set([...(record?.members ?? []), ...live.map((m) => m.info.id)])];
    const byId = new Map(partitions.map((p) => [p.id, p]));
    const members: MemberView[] = memberIds.map((id) => {
      const info = liveById.get(id);
      const mine = record ? partitionsOf(record.assignment, id).sort(comparePartitions) : [];
      const lastCommit = this.lastCommitAt.get(id);
      return {
        id,
        live: info !== undefined,
        allocated: record?.members.includes(id) ?? false,
        ...(info ? { host: info.host, pid: info.pid } : {}),
        ...(info?.weight !== undefined ? { weight: info.weight } : {}),
        waitingMs: waiting[id] ?? null,
        partitions: mine,
        claimed: mine.filter((p) => byId.get(p)?.claim?.member === id).length,
        lag: mine.reduce((sum, p) => sum + (byId.get(p)?.lag ?? 0), 0),
        lastCommitMsAgo: lastCommit === undefined ? null : at - lastCommit,
        rate: prev && seconds > 0 ? (moved.get(id) ?? 0) / seconds : null,
        committedTotal: this.committedTotal.get(id) ?? 0,
      };
    });
    return {
      group: this.group,
      at,
      allocation: record
        ? { generation: record.generation, leader: record.leader, strategy: record.strategy, members: record.members }
        : null,
      members,
      partitions,
      lag: partitions.reduce((sum, p) => sum + (p.lag ?? 0), 0),
      control: controlState(control),
      waiting,
      throttled: record?.throttled ?? 0,
    };
  }

  /**
   * Committed offsets with who committed them: OffsetFetch to the group coordinator. The consumer writes
   * `committed by <member>` as each commit's metadata, which tells whose work an advance was, even for the final
   * commit of a member that is leaving.
   */
  private committed(
    parts: ReadonlyArray<{ topic: string; partition: number }>,
  ): Promise<Map<string, { offset: number; by: string | null }>> {
    const result = new Map<string, { offset: number; by: string | null }>();
    if (parts.length === 0) return Promise.resolve(result);
    const byTopic = new Map<string, number[]>();
    for (const { topic, partition } of parts) byTopic.set(topic, [...(byTopic.get(topic) ?? []), partition]);
    return this.cluster.retry(`OffsetFetch for group ${this.group}`, async () => {
      const coordinator = await this.offsets.findCoordinator();
      const response = await coordinator.send('OffsetFetch', {
        groupId: this.group,
        topics: [...byTopic].map(([name, partitionIndexes]) => ({ name, partitionIndexes })),
        requireStable: false,
      });
      const codes = [response.errorCode, ...response.topics.flatMap((t) => t.partitions.map((p) => p.errorCode))];
      const failed = codes.find((code) => code !== KAFKA_ERROR_CODES.NONE);
      if (failed !== undefined) {
        // A moved coordinator is found again on the next attempt.
        this.offsets = new OffsetStore(this.cluster, this.group, 'kiel-inspect');
        throw new KielError('ERR_KAFKA', `OffsetFetch for group ${this.group} failed with error code ${failed}`, {
          retriable: true,
          errorCode: failed,
        });
      }
      for (const t of response.topics) {
        for (const p of t.partitions) {
          const by = /^committed by (.+)$/.exec(p.metadata ?? '')?.[1] ?? null;
          result.set(`${t.name}:${p.partitionIndex}`, { offset: p.committedOffset, by });
        }
      }
      return result;
    });
  }

  /** High watermarks (ListOffsets, latest), one request per partition leader. */
  private async highWatermarks(
    parts: ReadonlyArray<{ topic: string; partition: number }>,
  ): Promise<Map<string, number>> {
    const result = new Map<string, number>();
    if (parts.length === 0) return result;
    const topics = [...new Set(parts.map((p) => p.topic))];
    await this.cluster.track(topics);
    if (this.cluster.metadataStale) await this.cluster.refreshMetadata();
    await this.cluster.retry(`ListOffsets for group ${this.group}`, async () => {
      const byLeader = new Map<number, Map<string, number[]>>();
      for (const { topic, partition } of parts) {
        if (result.has(`${topic}:${partition}`)) continue;
        if (this.cluster.isUnknown(topic)) {
          result.set(`${topic}:${partition}`, 0);
          continue;
        }
        const leader = this.cluster.leaderOf(topic, partition);
        if (leader < 0) {
          throw new KielError('ERR_KAFKA', `${topic}-${partition} has no leader`, {
            retriable: true,
            kafkaError: 'LEADER_NOT_AVAILABLE',
            errorCode: KAFKA_ERROR_CODES.LEADER_NOT_AVAILABLE,
          });
        }
        const topicsOfLeader = byLeader.get(leader) ?? new Map<string, number[]>();
        byLeader.set(leader, topicsOfLeader);
        topicsOfLeader.set(topic, [...(topicsOfLeader.get(topic) ?? []), partition]);
      }
      let retriable: KielError | undefined;
      await Promise.all(
        [...byLeader].map(async ([leader, topicsOfLeader]) => {
          const response = await this.cluster.send(leader, 'ListOffsets', {
            isolationLevel: IsolationLevel.READ_UNCOMMITTED,
            topics: [...topicsOfLeader].map(([name, ps]) => ({
              name,
              partitions: ps.map((partitionIndex) => ({ partitionIndex, timestamp: ListOffsetsTimestamp.LATEST })),
            })),
          });
          for (const t of response.topics) {
            for (const p of t.partitions) {
              if (p.errorCode === KAFKA_ERROR_CODES.NONE) result.set(`${t.name}:${p.partitionIndex}`, p.offset);
              else
                retriable ??= new KielError('ERR_KAFKA', `ListOffsets ${t.name}-${p.partitionIndex}`, {
                  retriable: true,
                  errorCode: p.errorCode,
                });
            }
          }
        }),
      );
      if (retriable) throw retriable;
    });
    return result;
  }
}

/** A marker's stall report, if it has one (an unreadable marker reports nothing: it is only a hint). */
function stalledOf(text: string | undefined, id: string): PartitionView['stalled'] {
  if (text === undefined) return undefined;
  try {
    const stalled = parseMarker(text, id).stalled;
    return stalled ? { member: stalled.member, offset: stalled.offset, since: stalled.since } : undefined;
  } catch {
    return undefined;
  }
}

/** Orders `topic:partition` ids by topic, then by partition number. */
export function comparePartitions(a: string, b: string): number {
  const x = parsePartitionId(a);
  const y = parsePartitionId(b);
  return x.topic < y.topic ? -1 : x.topic > y.topic ? 1 : x.partition - y.partition;
}
