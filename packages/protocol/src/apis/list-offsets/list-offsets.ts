import type { ApiImplementation } from '../definition';

/** Special ListOffsets timestamps. */
export const ListOffsetsTimestamp = {
  /** The offset of the next message to be written (the log end offset, or LSO under read_committed). */
  LATEST: -1,
  /** The first offset still in the log. */
  EARLIEST: -2,
} as const;

/** Isolation levels of Fetch and ListOffsets. */
export const IsolationLevel = {
  READ_UNCOMMITTED: 0,
  READ_COMMITTED: 1,
} as const;

/** A partition to look up. */
export interface ListOffsetsRequestPartition {
  partitionIndex: number;
  /** v4+: the leader epoch the client knows, for fencing; default -1 (none). */
  currentLeaderEpoch?: number;
  /** A timestamp in ms, or {@link ListOffsetsTimestamp}. */
  timestamp: number | bigint;
}

/** A topic to look up. */
export interface ListOffsetsRequestTopic {
  name: string;
  partitions: ListOffsetsRequestPartition[];
}

/** ListOffsets request. */
export interface ListOffsetsRequest {
  /** The broker id of a follower, or -1 (the default) for a client. */
  replicaId?: number;
  /** v2+: {@link IsolationLevel}; default READ_UNCOMMITTED. */
  isolationLevel?: number;
  topics: ListOffsetsRequestTopic[];
}

/** A partition's answer. */
export interface ListOffsetsResponsePartition {
  partitionIndex: number;
  errorCode: number;
  /** The timestamp of the returned offset, or -1. */
  timestamp: number;
  offset: number;
  /** v4+; -1 before. */
  leaderEpoch: number;
}

/** A topic's answer. */
export interface ListOffsetsResponseTopic {
  name: string;
  partitions: ListOffsetsResponsePartition[];
}

/** ListOffsets response. */
export interface ListOffsetsResponse {
  /** v2+; 0 before. */
  throttleTimeMs: number;
  topics: ListOffsetsResponseTopic[];
}

const CLIENT_REPLICA_ID = -1;

/** ListOffsets (key 2), v1-v7. Flexible from v6. */
export const listOffsetsApi: ApiImplementation<ListOffsetsRequest, ListOffsetsResponse> = {
  apiName: 'ListOffsets',
  minVersion: 1,
  maxVersion: 7,
  firstFlexibleVersion: 6,
  writeRequest(writer, request, { version, encoding }) {
    writer.writeInt32(request.replicaId ?? CLIENT_REPLICA_ID);
    if (version >= 2) writer.writeInt8(request.isolationLevel ?? IsolationLevel.READ_UNCOMMITTED);
    encoding.writeArray(writer, request.topics, (w, topic) => {
      encoding.writeString(w, topic.name);
      encoding.writeArray(w, topic.partitions, (p, partition) => {
        p.writeInt32(partition.partitionIndex);
        if (version >= 4) p.writeInt32(partition.currentLeaderEpoch ?? -1);
        p.writeInt64(partition.timestamp);
        encoding.writeTaggedFields(p);
      });
      encoding.writeTaggedFields(w);
    });
    encoding.writeTaggedFields(writer);
  },
  readResponse(reader, { version, encoding }) {
    const throttleTimeMs = version >= 2 ? reader.readInt32() : 0;
    const topics = encoding.readArray(reader, (r): ListOffsetsResponseTopic => {
      const name = encoding.readString(r);
      const partitions = encoding.readArray(r, (p): ListOffsetsResponsePartition => {
        const partition = {
          partitionIndex: p.readInt32(),
          errorCode: p.readInt16(),
          timestamp: p.readInt64Number(),
          offset: p.readInt64Number(),
          leaderEpoch: version >= 4 ? p.readInt32() : -1,
        };
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
