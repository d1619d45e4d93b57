import { KAFKA_ERROR_CODES } from '../../kafka-errors';
import type { Reader } from '../../primitives/reader';
import type { ApiImplementation, VersionContext } from '../definition';
import { CLASSIC_ENCODING } from '../encoding';

/** Sent by clients from v3 on; brokers log it and expose it in metrics. */
export const DEFAULT_CLIENT_SOFTWARE_NAME = 'kiel-ts';
/** Sent with {@link DEFAULT_CLIENT_SOFTWARE_NAME}. */
export const DEFAULT_CLIENT_SOFTWARE_VERSION = '0.1.0';

/** ApiVersions request. Empty before v3. */
export interface ApiVersionsRequest {
  /** v3+: the client's name; Kafka accepts letters, digits, `-` and `.`. */
  clientSoftwareName?: string;
  /** v3+: the client's version. */
  clientSoftwareVersion?: string;
}

/** One API the broker supports, with its version range. */
export interface ApiVersionsResponseKey {
  apiKey: number;
  minVersion: number;
  maxVersion: number;
}

/** A feature and the version range the broker supports (v3+ tagged field). */
export interface ApiVersionsSupportedFeature {
  name: string;
  minVersion: number;
  maxVersion: number;
}

/** A feature and its cluster-wide finalized version level range (v3+ tagged field). */
export interface ApiVersionsFinalizedFeature {
  name: string;
  maxVersionLevel: number;
  minVersionLevel: number;
}

/** ApiVersions response. */
export interface ApiVersionsResponse {
  errorCode: number;
  apiKeys: ApiVersionsResponseKey[];
  /** v1+; 0 before. */
  throttleTimeMs: number;
  /** v3+ tag 0; empty when absent. */
  supportedFeatures: ApiVersionsSupportedFeature[];
  /** v3+ tag 1; -1 when absent. */
  finalizedFeaturesEpoch: number;
  /** v3+ tag 2; empty when absent. */
  finalizedFeatures: ApiVersionsFinalizedFeature[];
  /** v3+ tag 3; false when absent. */
  zkMigrationReady: boolean;
}

const TAG_SUPPORTED_FEATURES = 0;
const TAG_FINALIZED_FEATURES_EPOCH = 1;
const TAG_FINALIZED_FEATURES = 2;
const TAG_ZK_MIGRATION_READY = 3;

function readBody(reader: Reader, { version, encoding }: VersionContext): ApiVersionsResponse {
  const errorCode = reader.readInt16();
  const apiKeys = encoding.readArray(reader, (r) => {
    const key = { apiKey: r.readInt16(), minVersion: r.readInt16(), maxVersion: r.readInt16() };
    encoding.readTaggedFields(r);
    return key;
  });
  const response: ApiVersionsResponse = {
    errorCode,
    apiKeys,
    throttleTimeMs: version >= 1 ? reader.readInt32() : 0,
    supportedFeatures: [],
    finalizedFeaturesEpoch: -1,
    finalizedFeatures: [],
    zkMigrationReady: false,
  };
  encoding.readTaggedFields(reader, (tag, r) => {
    if (tag === TAG_SUPPORTED_FEATURES) {
      response.supportedFeatures = encoding.readArray(r, (item) => {
        const feature = { name: item.readCompactString(), minVersion: item.readInt16(), maxVersion: item.readInt16() };
        encoding.readTaggedFields(item);
        return feature;
      });
    } else if (tag === TAG_FINALIZED_FEATURES_EPOCH) {
      response.finalizedFeaturesEpoch = r.readInt64Number();
    } else if (tag === TAG_FINALIZED_FEATURES) {
      response.finalizedFeatures = encoding.readArray(r, (item) => {
        const feature = {
          name: item.readCompactString(),
          maxVersionLevel: item.readInt16(),
          minVersionLevel: item.readInt16(),
        };
        encoding.readTaggedFields(item);
        return feature;
      });
    } else if (tag === TAG_ZK_MIGRATION_READY) {
      response.zkMigrationReady = r.readBoolean();
    }
  });
  return response;
}

const V0_CONTEXT_VERSION = 0;

/** ApiVersions (key 18), v0-v3. Flexible from v3, but its response header stays v0 (KIP-511). */
export const apiVersionsApi: ApiImplementation<ApiVersionsRequest, ApiVersionsResponse> = {
  apiName: 'ApiVersions',
  minVersion: 0,
  maxVersion: 3,
  firstFlexibleVersion: 3,
  // A client reads the header before it knows which layout the broker answered in (v0 on UNSUPPORTED_VERSION).
  responseHeaderVersion: () => 0,
  writeRequest(writer, request, { version, encoding }) {
    if (version >= 3) {
      encoding.writeString(writer, request.clientSoftwareName ?? DEFAULT_CLIENT_SOFTWARE_NAME);
      encoding.writeString(writer, request.clientSoftwareVersion ?? DEFAULT_CLIENT_SOFTWARE_VERSION);
    }
    encoding.writeTaggedFields(writer);
  },
  readResponse(reader, context) {
    // A broker that does not know the requested version answers UNSUPPORTED_VERSION in the v0 layout, so that any
    // client can read it and retry with a version from the list.
    if (
      context.version > V0_CONTEXT_VERSION &&
      reader.remaining >= 2 &&
      reader.buffer.readInt16BE(reader.offset) === KAFKA_ERROR_CODES.UNSUPPORTED_VERSION
    ) {
      return readBody(reader, { version: V0_CONTEXT_VERSION, encoding: CLASSIC_ENCODING });
    }
    return readBody(reader, context);
  },
};
