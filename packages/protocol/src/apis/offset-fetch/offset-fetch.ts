import { KafkaProtocolError } from '../../errors';
import type { ApiImplementation } from '../definition';
import { writeInt32Item } from '../encoding';

/** A topic whose committed offsets to fetch. */
export interface OffsetFetchRequestTopic {
  name: string;
  partitionIndexes: number[];
}

/** OffsetFetch request. */
export interface OffsetFetchRequest {
  groupId: string;
  /** The partitions to look up; null (v2+) for every partition the group committed. */
  topics: OffsetFetchRequestTopic[] | null;
  /** v7+: wait for pending transactional commits (KIP-447); default false. */
  requireStable?: boolean;
}

/** A partition's committed offset. */
export interface OffsetFetchResponsePartition {
  partitionIndex: number;
  /** The committed offset, or -1 when nothing was committed. */
  committedOffset: number;
  /** v5+; -1 before or when unknown. */
  committedLeaderEpoch: number;
  metadata: string | null;
  errorCode: number;
}

/** A topic's committed offsets. */
export interface OffsetFetchResponseTopic {
  name: string;
  partitions: OffsetFetchResponsePartition[];
}

/** OffsetFetch response. */
export interface OffsetFetchResponse {
  /** v3+; 0 before. */
  throttleTimeMs: number;
  topics: OffsetFetchResponseTopic[];
  /** v2+: the group-level error (for example COORDINATOR_LOAD_IN_PROGRESS); 0 before. */
  errorCode: number;
}

/** OffsetFetch (key 9), v1-v7. Flexible from v6. */
export const offsetFetchApi: ApiImplementation<OffsetFetchRequest, OffsetFetchResponse> = {
  apiName: 'OffsetFetch',
  minVersion: 1,
  maxVersion: 7,
  firstFlexibleVersion: 6,
  writeRequest(writer, request, { version, encoding }) {
    encoding.writeString(writer, request.groupId);
    if (request.topics === null && version < 2) {
      throw new KafkaProtocolError('ERR_INVALID_ARGUMENT', 'OffsetFetch v1 cannot fetch all topics (topics: null)');
    }
    encoding.writeNullableArray(writer, request.topics, (w, topic) => {
      encoding.writeString(w, topic.name);
      encoding.writeArray(w, topic.partitionIndexes, writeInt32Item);
      encoding.writeTaggedFields(w);
    });
    if (version >= 7) writer.writeBoolean(request.requireStable ?? false);
    encoding.writeTaggedFields(writer);
  },
  readResponse(reader, { version, encoding }) {
    const throttleTimeMs = version >= 3 ? reader.readInt32() : 0;
    const topics = encoding.readArray(reader, (r): OffsetFetchResponseTopic => {
      const name = encoding.readString(r);
      const partitions = encoding.readArray(r, (p): OffsetFetchResponsePartition => {
        const partition = {
          partitionIndex: p.readInt32(),
          committedOffset: p.readInt64Number(),
          committedLeaderEpoch: version >= 5 ? p.readInt32() : -1,
          metadata: encoding.readNullableString(p),
          errorCode: p.readInt16(),
        };
        encoding.readTaggedFields(p);
        return partition;
      });
      encoding.readTaggedFields(r);
      return { name, partitions };
    });
    const errorCode = version >= 2 ? reader.readInt16() : 0;
    encoding.readTaggedFields(reader);
    return { throttleTimeMs, topics, errorCode };
  },
};
