import type { Reader } from '../../primitives/reader';
import type { TaggedField } from '../../primitives/writer';
import type { ApiImplementation } from '../definition';
import { writeInt32Item, type FieldEncoding } from '../encoding';
import { IsolationLevel } from '../list-offsets/list-offsets';

/** Fetch-session values (KIP-227). */
export const FetchSession = {
  /** `sessionId` of a request that is not part of a session. */
  NO_SESSION_ID: 0,
  /** `sessionEpoch` that asks the broker to create a new session. */
  INITIAL_EPOCH: 0,
  /** `sessionEpoch` for a full fetch without a session (the default). */
  FINAL_EPOCH: -1,
} as const;

/** A partition to fetch. */
export interface FetchRequestPartition {
  partition: number;
  /** v9+: the leader epoch the client knows, for fencing; default -1. */
  currentLeaderEpoch?: number;
  fetchOffset: number | bigint;
  /** v12+: the epoch of the last fetched record, for divergence detection; default -1. */
  lastFetchedEpoch?: number;
  /** v5+: only followers send it; default -1. */
  logStartOffset?: number | bigint;
  partitionMaxBytes: number;
}

/** A topic to fetch. */
export interface FetchRequestTopic {
  topic: string;
  partitions: FetchRequestPartition[];
}

/** Partitions to remove from an incremental fetch session. */
export interface FetchRequestForgottenTopic {
  topic: string;
  partitions: number[];
}

/** Fetch request. */
export interface FetchRequest {
  /** -1 (the default) for a consumer. */
  replicaId?: number;
  maxWaitMs: number;
  minBytes: number;
  /** v3+: the response size limit; default 0x7fffffff. */
  maxBytes?: number;
  /** v4+: {@link IsolationLevel}; default READ_UNCOMMITTED. */
  isolationLevel?: number;
  /** v7+: the fetch session id; default {@link FetchSession.NO_SESSION_ID}. */
  sessionId?: number;
  /** v7+: the fetch session epoch; default {@link FetchSession.FINAL_EPOCH} (no session). */
  sessionEpoch?: number;
  topics: FetchRequestTopic[];
  /** v7+: partitions to drop from the session; default none. */
  forgottenTopicsData?: FetchRequestForgottenTopic[];
  /** v11+: the consumer's rack, for follower fetching (KIP-392); default ''. */
  rackId?: string;
  /** v12+ (tag 0): the cluster id the client expects; default null (not sent). */
  clusterId?: string | null;
}

/** An aborted transaction in the fetched range; needed to filter records under read_committed. */
export interface FetchAbortedTransaction {
  /** Producer ids are int64 and may exceed 2^53, so they stay bigints. */
  producerId: bigint;
  firstOffset: number;
}

/** A partition's answer. */
export interface FetchResponsePartition {
  partitionIndex: number;
  errorCode: number;
  highWatermark: number;
  /** v4+: the last stable offset; -1 when unknown. */
  lastStableOffset: number;
  /** v5+; -1 before. */
  logStartOffset: number;
  /** v4+: null when none (or under read_uncommitted). */
  abortedTransactions: FetchAbortedTransaction[] | null;
  /** v11+: the replica to fetch from instead (KIP-392), or -1. */
  preferredReadReplica: number;
  /**
   * The record bytes, a view into the response (not decoded here: pass it to the records decoder). It may end with
   * a truncated batch, which is normal. Null when the partition has no data.
   */
  records: Buffer | null;
  /** v12+ (tag 0): set when the log diverged from `lastFetchedEpoch`. */
  divergingEpoch?: { epoch: number; endOffset: number };
  /** v12+ (tag 1): the current leader, when this broker is not it. */
  currentLeader?: { leaderId: number; leaderEpoch: number };
  /** v12+ (tag 2): for followers that must fetch a snapshot. */
  snapshotId?: { endOffset: number; epoch: number };
}

/** A topic's answer. */
export interface FetchResponseTopic {
  topic: string;
  partitions: FetchResponsePartition[];
}

/** Fetch response. */
export interface FetchResponse {
  throttleTimeMs: number;
  /** v7+: the top-level (session) error; 0 before. */
  errorCode: number;
  /** v7+: the fetch session id; 0 before. */
  sessionId: number;
  responses: FetchResponseTopic[];
}

const CLIENT_REPLICA_ID = -1;
const MAX_RESPONSE_BYTES = 0x7fff_ffff;
const TAG_CLUSTER_ID = 0;
const TAG_DIVERGING_EPOCH = 0;
const TAG_CURRENT_LEADER = 1;
const TAG_SNAPSHOT_ID = 2;

function readPartition(r: Reader, version: number, encoding: FieldEncoding): FetchResponsePartition {
  const partition: FetchResponsePartition = {
    partitionIndex: r.readInt32(),
    errorCode: r.readInt16(),
    highWatermark: r.readInt64Number(),
    lastStableOffset: r.readInt64Number(),
    logStartOffset: version >= 5 ? r.readInt64Number() : -1,
    abortedTransactions: encoding.readNullableArray(r, (a): FetchAbortedTransaction => {
      const aborted = { producerId: a.readInt64(), firstOffset: a.readInt64Number() };
      encoding.readTaggedFields(a);
      return aborted;
    }),
    preferredReadReplica: version >= 11 ? r.readInt32() : -1,
    records: encoding.readNullableBytes(r),
  };
  encoding.readTaggedFields(r, (tag, t) => {
    if (tag === TAG_DIVERGING_EPOCH) {
      partition.divergingEpoch = { epoch: t.readInt32(), endOffset: t.readInt64Number() };
      encoding.readTaggedFields(t);
    } else if (tag === TAG_CURRENT_LEADER) {
      partition.currentLeader = { leaderId: t.readInt32(), leaderEpoch: t.readInt32() };
      encoding.readTaggedFields(t);
    } else if (tag === TAG_SNAPSHOT_ID) {
      partition.snapshotId = { endOffset: t.readInt64Number(), epoch: t.readInt32() };
      encoding.readTaggedFields(t);
    }
  });
  return partition;
}

/** Fetch (key 1), v4-v12. Flexible from v12. Records are left as raw bytes for the records decoder. */
export const fetchApi: ApiImplementation<FetchRequest, FetchResponse> = {
  apiName: 'Fetch',
  minVersion: 4,
  maxVersion: 12,
  firstFlexibleVersion: 12,
  writeRequest(writer, request, { version, encoding }) {
    writer
      .writeInt32(request.replicaId ?? CLIENT_REPLICA_ID)
      .writeInt32(request.maxWaitMs)
      .writeInt32(request.minBytes)
      .writeInt32(request.maxBytes ?? MAX_RESPONSE_BYTES)
      .writeInt8(request.isolationLevel ?? IsolationLevel.READ_UNCOMMITTED);
    if (version >= 7) {
      writer.writeInt32(request.sessionId ?? FetchSession.NO_SESSION_ID);
      writer.writeInt32(request.sessionEpoch ?? FetchSession.FINAL_EPOCH);
    }
    encoding.writeArray(writer, request.topics, (w, topic) => {
      encoding.writeString(w, topic.topic);
      encoding.writeArray(w, topic.partitions, (p, partition) => {
        p.writeInt32(partition.partition);
        if (version >= 9) p.writeInt32(partition.currentLeaderEpoch ?? -1);
        p.writeInt64(partition.fetchOffset);
        if (version >= 12) p.writeInt32(partition.lastFetchedEpoch ?? -1);
        if (version >= 5) p.writeInt64(partition.logStartOffset ?? -1);
        p.writeInt32(partition.partitionMaxBytes);
        encoding.writeTaggedFields(p);
      });
      encoding.writeTaggedFields(w);
    });
    if (version >= 7) {
      encoding.writeArray(writer, request.forgottenTopicsData ?? [], (w, forgotten) => {
        encoding.writeString(w, forgotten.topic);
        encoding.writeArray(w, forgotten.partitions, writeInt32Item);
        encoding.writeTaggedFields(w);
      });
    }
    if (version >= 11) encoding.writeString(writer, request.rackId ?? '');
    const tagged: TaggedField[] = [];
    if (version >= 12 && request.clusterId != null) {
      const clusterId = request.clusterId;
      tagged.push({ tag: TAG_CLUSTER_ID, write: (w) => void w.writeCompactNullableString(clusterId) });
    }
    encoding.writeTaggedFields(writer, tagged);
  },
  readResponse(reader, { version, encoding }) {
    const throttleTimeMs = reader.readInt32();
    const errorCode = version >= 7 ? reader.readInt16() : 0;
    const sessionId = version >= 7 ? reader.readInt32() : 0;
    const responses = encoding.readArray(reader, (r): FetchResponseTopic => {
      const topic = encoding.readString(r);
      const partitions = encoding.readArray(r, (p) => readPartition(p, version, encoding));
      encoding.readTaggedFields(r);
      return { topic, partitions };
    });
    encoding.readTaggedFields(reader);
    return { throttleTimeMs, errorCode, sessionId, responses };
  },
};
