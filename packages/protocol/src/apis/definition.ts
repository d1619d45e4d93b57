import { KafkaProtocolError } from '../errors';
import type { RequestHeaderVersion, ResponseHeaderVersion } from '../headers';
import { Reader } from '../primitives/reader';
import { Writer } from '../primitives/writer';
import { ApiKeys, type ApiName } from './api-keys';
import { CLASSIC_ENCODING, COMPACT_ENCODING, type FieldEncoding } from './encoding';

/**
 * The codec of one version of one API: what the registry, `encodeRequest` and `decodeResponse` dispatch to. Each
 * `src/apis/<api>/v<N>.ts` file exports one.
 */
export interface ApiVersionCodec<Request, Response> {
  readonly apiName: ApiName;
  readonly apiKey: number;
  readonly version: number;
  /** Whether this version uses compact encodings and tagged fields (and request header v2). */
  readonly flexible: boolean;
  readonly requestHeaderVersion: RequestHeaderVersion;
  readonly responseHeaderVersion: ResponseHeaderVersion;
  /** Encodes a request body (no header, no size prefix). */
  readonly encode: (request: Request) => Buffer;
  /** Decodes a response body (after the response header). Pure: error codes come back as data. */
  readonly decode: (body: Buffer) => Response;
  /** Appends the request body to `writer`, for callers that frame header and body in one buffer. */
  readonly writeRequest: (writer: Writer, request: Request) => void;
  /** Reads the response body at the reader's cursor. */
  readonly readResponse: (reader: Reader) => Response;
}

/** What an API implementation provides, once for all its versions. */
export interface ApiImplementation<Request, Response> {
  readonly apiName: ApiName;
  /** Lowest and highest version implemented. */
  readonly minVersion: number;
  readonly maxVersion: number;
  /** First flexible version in Kafka's message definition (Infinity for an API that has none). */
  readonly firstFlexibleVersion: number;
  /** Overrides the response header version (ApiVersions always answers with header v0). */
  readonly responseHeaderVersion?: (version: number) => ResponseHeaderVersion;
  writeRequest(writer: Writer, request: Request, context: VersionContext): void;
  readResponse(reader: Reader, context: VersionContext): Response;
}

/** The version being encoded or decoded, and its field encoding. */
export interface VersionContext {
  readonly version: number;
  readonly encoding: FieldEncoding;
}

/** Builds the codec of one version of an API implementation. */
export function defineVersion<Request, Response>(
  api: ApiImplementation<Request, Response>,
  version: number,
): ApiVersionCodec<Request, Response> {
  if (!Number.isInteger(version) || version < api.minVersion || version > api.maxVersion) {
    throw new KafkaProtocolError(
      'ERR_UNSUPPORTED_VERSION',
      `${api.apiName} v${version} is not implemented (v${api.minVersion}-v${api.maxVersion} are)`,
    );
  }
  const flexible = version >= api.firstFlexibleVersion;
  const context: VersionContext = { version, encoding: flexible ? COMPACT_ENCODING : CLASSIC_ENCODING };
  const writeRequest = (writer: Writer, request: Request): void => {
    if (request === null || typeof request !== 'object') {
      throw new KafkaProtocolError('ERR_INVALID_ARGUMENT', `${api.apiName} v${version} request must be an object`);
    }
    api.writeRequest(writer, request, context);
  };
  const readResponse = (reader: Reader): Response => api.readResponse(reader, context);
  return {
    apiName: api.apiName,
    apiKey: ApiKeys[api.apiName],
    version,
    flexible,
    requestHeaderVersion: flexible ? 2 : 1,
    responseHeaderVersion: api.responseHeaderVersion?.(version) ?? (flexible ? 1 : 0),
    writeRequest,
    readResponse,
    encode: (request) => {
      const writer = new Writer();
      writeRequest(writer, request);
      return writer.toBuffer();
    },
    decode: (body) => readResponse(new Reader(body)),
  };
}
