export { KafkaProtocolError, isKafkaProtocolError } from './errors';
export type { ProtocolErrorCode } from './errors';

export { Reader, Writer } from './primitives';
export type { TaggedField, TaggedFieldReader } from './primitives';

export {
  peekCorrelationId,
  readRequestHeader,
  readResponseHeader,
  writeRequestHeader,
  writeResponseHeader,
} from './headers';
export type { RequestHeader, RequestHeaderVersion, ResponseHeader, ResponseHeaderVersion } from './headers';

export { KAFKA_ERRORS, KAFKA_ERROR_CODES } from './kafka-errors';
export type { KafkaErrorInfo, KafkaErrorName } from './kafka-errors';
export { KafkaError, isKafkaError, kafkaErrorByCode, kafkaErrorByName, kafkaErrorFromCode } from './kafka-error';
export type { KafkaErrorOptions } from './kafka-error';

export { ApiKeys } from './apis/api-keys';
export type { ApiKey, ApiName } from './apis/api-keys';
export type { ApiVersionCodec } from './apis/definition';
export {
  IMPLEMENTED_VERSIONS,
  apiNameOf,
  decodeResponse,
  encodeRequest,
  encodeRequestFrame,
  getCodec,
  negotiateVersions,
  requireVersion,
} from './apis/registry';
export type {
  ApiTypes,
  ApiVersionRange,
  DecodedResponse,
  NegotiatedVersions,
  RequestHeaderFields,
  RequestOf,
  ResponseOf,
} from './apis/registry';

export {
  ApiVersions,
  Fetch,
  FindCoordinator,
  ListOffsets,
  Metadata,
  OffsetCommit,
  OffsetFetch,
  SaslAuthenticate,
  SaslHandshake,
} from './apis';
export { CoordinatorKeyType } from './apis/find-coordinator/find-coordinator';
export { IsolationLevel, ListOffsetsTimestamp } from './apis/list-offsets/list-offsets';
export { FetchSession } from './apis/fetch/fetch';
export { SimpleCommit } from './apis/offset-commit/offset-commit';
export * from './records';
