import type { ApiImplementation } from '../definition';

/** Values of OffsetCommit for a client outside Kafka's group protocol (the simple-consumer form). */
export const SimpleCommit = {
  /** `generationIdOrMemberEpoch` of a commit made outside a Kafka-managed group generation. */
  GENERATION_ID: -1,
  /** `memberId` of such a commit. */
  MEMBER_ID: '',
} as const;

/** A partition offset to commit. */
export interface OffsetCommitRequestPartition {
  partitionIndex: number;
  /** The next offset to consume (last processed + 1). */
  committedOffset: number | bigint;
  /** v6+: the leader epoch of the last consumed record; default -1. */
  committedLeaderEpoch?: number;
  /** Free-form metadata stored with the offset; default null. */
  committedMetadata?: string | null;
}

/** A topic's offsets to commit. */
export interface OffsetCommitRequestTopic {
  name: string;
  partitions: OffsetCommitRequestPartition[];
}

/** OffsetCommit request. */
export interface OffsetCommitRequest {
  groupId: string;
  /** The group generation (or member epoch); default -1 ({@link SimpleCommit}). */
  generationIdOrMemberEpoch?: number;
  /** Default '' ({@link SimpleCommit}). */
  memberId?: string;
  /** v7+: static membership id; default null. */
  groupInstanceId?: string | null;
  /** v2-v4: offset retention in ms; default -1 (the broker's setting). */
  retentionTimeMs?: number | bigint;
  topics: OffsetCommitRequestTopic[];
}

/** A partition's commit result. */
export interface OffsetCommitResponsePartition {
  partitionIndex: number;
  errorCode: number;
}

/** A topic's commit results. */
export interface OffsetCommitResponseTopic {
  name: string;
  partitions: OffsetCommitResponsePartition[];
}

/** OffsetCommit response. */
export interface OffsetCommitResponse {
  /** v3+; 0 before. */
  throttleTimeMs: number;
  topics: OffsetCommitResponseTopic[];
}

const DEFAULT_RETENTION_TIME_MS = -1;

/** OffsetCommit (key 8), v2-v8. Flexible from v8. */
export const offsetCommitApi: ApiImplementation<OffsetCommitRequest, OffsetCommitResponse> = {
  apiName: 'OffsetCommit',
  minVersion: 2,
  maxVersion: 8,
  firstFlexibleVersion: 8,
  writeRequest(writer, request, { version, encoding }) {
    encoding.writeString(writer, request.groupId);
    writer.writeInt32(request.generationIdOrMemberEpoch ?? SimpleCommit.GENERATION_ID);
    encoding.writeString(writer, request.memberId ?? SimpleCommit.MEMBER_ID);
    if (version >= 7) encoding.writeNullableString(writer, request.groupInstanceId ?? null);
    if (version <= 4) writer.writeInt64(request.retentionTimeMs ?? DEFAULT_RETENTION_TIME_MS);
    encoding.writeArray(writer, request.topics, (w, topic) => {
      encoding.writeString(w, topic.name);
      encoding.writeArray(w, topic.partitions, (p, partition) => {
        p.writeInt32(partition.partitionIndex);
        p.writeInt64(partition.committedOffset);
        if (version >= 6) p.writeInt32(partition.committedLeaderEpoch ?? -1);
        encoding.writeNullableString(p, partition.committedMetadata ?? null);
        encoding.writeTaggedFields(p);
      });
      encoding.writeTaggedFields(w);
    });
    encoding.writeTaggedFields(writer);
  },
  readResponse(reader, { version, encoding }) {
    const throttleTimeMs = version >= 3 ? reader.readInt32() : 0;
    const topics = encoding.readArray(reader, (r): OffsetCommitResponseTopic => {
      const name = encoding.readString(r);
      const partitions = encoding.readArray(r, (p): OffsetCommitResponsePartition => {
        const partition = { partitionIndex: p.readInt32(), errorCode: p.readInt16() };
        encoding.readTaggedFields(p);
        return partition;
      });
      encoding.readTaggedFields(r);
      return { name, partitions };
    });
    encoding.readTaggedFields(reader);
    return { throttleTimeMs, topics };
  },
};
