import { KafkaProtocolError } from '../../errors';
import type { ApiImplementation } from '../definition';
import { readInt32Item } from '../encoding';

/** Kafka's value for "authorized operations not requested or not available". */
export const AUTHORIZED_OPERATIONS_OMITTED = -2147483648;
/** The all-zero topic id Kafka uses for "no id". */
export const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

/** A topic to describe. */
export interface MetadataRequestTopic {
  /** The topic name; from v10 it may be null when `topicId` is given. */
  name: string | null;
  /** v10+: the topic id; all zeros (the default) means "by name". */
  topicId?: string;
}

/** Metadata request. */
export interface MetadataRequest {
  /** The topics to describe; null for all topics, an empty array for none (brokers only). */
  topics: MetadataRequestTopic[] | null;
  /** v4+: let the broker auto-create missing topics if it is configured to. Kafka's default: true. */
  allowAutoTopicCreation?: boolean;
  /** v8-v10: include cluster authorized operations. Default false. */
  includeClusterAuthorizedOperations?: boolean;
  /** v8+: include topic authorized operations. Default false. */
  includeTopicAuthorizedOperations?: boolean;
}

/** A broker of the cluster. */
export interface MetadataResponseBroker {
  nodeId: number;
  host: string;
  port: number;
  rack: string | null;
}

/** A partition of a topic. */
export interface MetadataResponsePartition {
  errorCode: number;
  partitionIndex: number;
  leaderId: number;
  /** v7+; -1 before. */
  leaderEpoch: number;
  replicaNodes: number[];
  isrNodes: number[];
  /** v5+; empty before. */
  offlineReplicas: number[];
}

/** A topic. */
export interface MetadataResponseTopic {
  errorCode: number;
  /** Null only for a topic asked for by id that does not exist (v12+). */
  name: string | null;
  /** v10+; all zeros before. */
  topicId: string;
  isInternal: boolean;
  partitions: MetadataResponsePartition[];
  /** v8+; {@link AUTHORIZED_OPERATIONS_OMITTED} before or when not requested. */
  topicAuthorizedOperations: number;
}

/** Metadata response. */
export interface MetadataResponse {
  /** v3+; 0 before. */
  throttleTimeMs: number;
  brokers: MetadataResponseBroker[];
  /** v2+; null before. */
  clusterId: string | null;
  controllerId: number;
  topics: MetadataResponseTopic[];
  /** v8-v10; {@link AUTHORIZED_OPERATIONS_OMITTED} otherwise. */
  clusterAuthorizedOperations: number;
}

/** Metadata (key 3), v1-v12. Flexible from v9. */
export const metadataApi: ApiImplementation<MetadataRequest, MetadataResponse> = {
  apiName: 'Metadata',
  minVersion: 1,
  maxVersion: 12,
  firstFlexibleVersion: 9,
  writeRequest(writer, request, { version, encoding }) {
    encoding.writeNullableArray(writer, request.topics, (w, topic) => {
      if (version >= 10) {
        w.writeUuid(topic.topicId ?? ZERO_UUID);
        encoding.writeNullableString(w, topic.name);
      } else {
        if (typeof topic.name !== 'string') {
          throw new KafkaProtocolError('ERR_INVALID_ARGUMENT', `Metadata v${version} needs topic names`);
        }
        encoding.writeString(w, topic.name);
      }
      encoding.writeTaggedFields(w);
    });
    if (version >= 4) writer.writeBoolean(request.allowAutoTopicCreation ?? true);
    if (version >= 8 && version <= 10) writer.writeBoolean(request.includeClusterAuthorizedOperations ?? false);
    if (version >= 8) writer.writeBoolean(request.includeTopicAuthorizedOperations ?? false);
    encoding.writeTaggedFields(writer);
  },
  readResponse(reader, { version, encoding }) {
    const throttleTimeMs = version >= 3 ? reader.readInt32() : 0;
    const brokers = encoding.readArray(reader, (r) => {
      const broker = {
        nodeId: r.readInt32(),
        host: encoding.readString(r),
        port: r.readInt32(),
        rack: encoding.readNullableString(r),
      };
      encoding.readTaggedFields(r);
      return broker;
    });
    const clusterId = version >= 2 ? encoding.readNullableString(reader) : null;
    const controllerId = reader.readInt32();
    const topics = encoding.readArray(reader, (r): MetadataResponseTopic => {
      const errorCode = r.readInt16();
      const name = version >= 12 ? encoding.readNullableString(r) : encoding.readString(r);
      const topicId = version >= 10 ? r.readUuid() : ZERO_UUID;
      const isInternal = r.readBoolean();
      const partitions = encoding.readArray(r, (p): MetadataResponsePartition => {
        const partition = {
          errorCode: p.readInt16(),
          partitionIndex: p.readInt32(),
          leaderId: p.readInt32(),
          leaderEpoch: version >= 7 ? p.readInt32() : -1,
          replicaNodes: encoding.readArray(p, readInt32Item),
          isrNodes: encoding.readArray(p, readInt32Item),
          offlineReplicas: version >= 5 ? encoding.readArray(p, readInt32Item) : [],
        };
        encoding.readTaggedFields(p);
        return partition;
      });
      const topicAuthorizedOperations = version >= 8 ? r.readInt32() : AUTHORIZED_OPERATIONS_OMITTED;
      encoding.readTaggedFields(r);
      return { errorCode, name, topicId, isInternal, partitions, topicAuthorizedOperations };
    });
    const clusterAuthorizedOperations =
      version >= 8 && version <= 10 ? reader.readInt32() : AUTHORIZED_OPERATIONS_OMITTED;
    encoding.readTaggedFields(reader);
    return { throttleTimeMs, brokers, clusterId, controllerId, topics, clusterAuthorizedOperations };
  },
};
