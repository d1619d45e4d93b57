import { KafkaProtocolError } from '../errors';
import { readResponseHeader, writeRequestHeader } from '../headers';
import { Reader } from '../primitives/reader';
import { Writer } from '../primitives/writer';
import * as ApiVersions from './api-versions';
import { ApiKeys, type ApiName } from './api-keys';
import type { ApiVersionCodec } from './definition';
import * as Fetch from './fetch';
import * as FindCoordinator from './find-coordinator';
import * as ListOffsets from './list-offsets';
import * as Metadata from './metadata';
import * as OffsetCommit from './offset-commit';
import * as OffsetFetch from './offset-fetch';
import * as SaslAuthenticate from './sasl-authenticate';
import * as SaslHandshake from './sasl-handshake';

/** Request and response types of each API, for the dispatching helpers. */
export interface ApiTypes {
  ApiVersions: { request: ApiVersions.ApiVersionsRequest; response: ApiVersions.ApiVersionsResponse };
  Metadata: { request: Metadata.MetadataRequest; response: Metadata.MetadataResponse };
  FindCoordinator: {
    request: FindCoordinator.FindCoordinatorRequest;
    response: FindCoordinator.FindCoordinatorResponse;
  };
  ListOffsets: { request: ListOffsets.ListOffsetsRequest; response: ListOffsets.ListOffsetsResponse };
  Fetch: { request: Fetch.FetchRequest; response: Fetch.FetchResponse };
  OffsetFetch: { request: OffsetFetch.OffsetFetchRequest; response: OffsetFetch.OffsetFetchResponse };
  OffsetCommit: { request: OffsetCommit.OffsetCommitRequest; response: OffsetCommit.OffsetCommitResponse };
  SaslHandshake: { request: SaslHandshake.SaslHandshakeRequest; response: SaslHandshake.SaslHandshakeResponse };
  SaslAuthenticate: {
    request: SaslAuthenticate.SaslAuthenticateRequest;
    response: SaslAuthenticate.SaslAuthenticateResponse;
  };
}

/** The request type of an API. */
export type RequestOf<A extends ApiName> = ApiTypes[A]['request'];
/** The response type of an API. */
export type ResponseOf<A extends ApiName> = ApiTypes[A]['response'];

type AnyCodec = ApiVersionCodec<never, unknown>;

const CODECS: { readonly [A in ApiName]: readonly ApiVersionCodec<RequestOf<A>, ResponseOf<A>>[] } = {
  ApiVersions: ApiVersions.codecs,
  Metadata: Metadata.codecs,
  FindCoordinator: FindCoordinator.codecs,
  ListOffsets: ListOffsets.codecs,
  Fetch: Fetch.codecs,
  OffsetFetch: OffsetFetch.codecs,
  OffsetCommit: OffsetCommit.codecs,
  SaslHandshake: SaslHandshake.codecs,
  SaslAuthenticate: SaslAuthenticate.codecs,
};

/** A version range of one API. */
export interface ApiVersionRange {
  apiKey: number;
  minVersion: number;
  maxVersion: number;
}

/** What this package implements, per API: key and version range. */
export const IMPLEMENTED_VERSIONS: { readonly [A in ApiName]: ApiVersionRange } = Object.fromEntries(
  (Object.keys(CODECS) as ApiName[]).map((name) => {
    const codecs = CODECS[name] as readonly AnyCodec[];
    return [
      name,
      { apiKey: ApiKeys[name], minVersion: codecs[0].version, maxVersion: codecs[codecs.length - 1].version },
    ];
  }),
) as { [A in ApiName]: ApiVersionRange };

const NAMES_BY_KEY = new Map<number, ApiName>(
  (Object.keys(ApiKeys) as ApiName[]).map((name) => [ApiKeys[name] as number, name]),
);

/** The name of an implemented API key, or undefined. */
export function apiNameOf(apiKey: number): ApiName | undefined {
  return NAMES_BY_KEY.get(apiKey);
}

/** The codec of an API version; throws ERR_UNSUPPORTED_VERSION when this package does not implement it. */
export function getCodec<A extends ApiName>(api: A, version: number): ApiVersionCodec<RequestOf<A>, ResponseOf<A>> {
  const codecs = CODECS[api] as readonly ApiVersionCodec<RequestOf<A>, ResponseOf<A>>[] | undefined;
  if (!codecs) throw new KafkaProtocolError('ERR_UNSUPPORTED_VERSION', `API ${String(api)} is not implemented`);
  const codec = codecs[version - codecs[0].version];
  if (!codec || codec.version !== version) {
    const { minVersion, maxVersion } = IMPLEMENTED_VERSIONS[api];
    throw new KafkaProtocolError(
      'ERR_UNSUPPORTED_VERSION',
      `${api} v${version} is not implemented (v${minVersion}-v${maxVersion} are)`,
    );
  }
  return codec;
}

/** The highest version of each API that both this package and the broker support; null where they share none. */
export type NegotiatedVersions = { readonly [A in ApiName]: number | null };

/**
 * Picks, for each API this package implements, the highest version that the broker's ApiVersions answer also
 * supports. APIs the broker does not list, or whose ranges do not overlap ours, get null.
 *
 * @example
 * const versions = negotiateVersions(apiVersionsResponse.apiKeys);
 * const fetchVersion = requireVersion(versions, 'Fetch'); // throws ERR_UNSUPPORTED_VERSION when null
 */
export function negotiateVersions(brokerApiVersions: readonly ApiVersionRange[]): NegotiatedVersions {
  const broker = new Map<number, ApiVersionRange>();
  for (const range of brokerApiVersions) broker.set(range.apiKey, range);
  const result = {} as { [A in ApiName]: number | null };
  for (const name of Object.keys(IMPLEMENTED_VERSIONS) as ApiName[]) {
    const ours = IMPLEMENTED_VERSIONS[name];
    const theirs = broker.get(ours.apiKey);
    const highest = theirs ? Math.min(ours.maxVersion, theirs.maxVersion) : -1;
    result[name] = theirs && highest >= Math.max(ours.minVersion, theirs.minVersion) ? highest : null;
  }
  return result;
}

/** The negotiated version of `api`; throws ERR_UNSUPPORTED_VERSION (naming the API) when there is none. */
export function requireVersion(negotiated: NegotiatedVersions, api: ApiName): number {
  const version = negotiated[api];
  if (version === null || version === undefined) {
    const { minVersion, maxVersion } = IMPLEMENTED_VERSIONS[api];
    throw new KafkaProtocolError(
      'ERR_UNSUPPORTED_VERSION',
      `the broker supports no version of ${api} that this client implements (v${minVersion}-v${maxVersion})`,
    );
  }
  return version;
}

/** The request header fields a caller chooses. */
export interface RequestHeaderFields {
  correlationId: number;
  clientId?: string | null;
}

/**
 * Encodes a complete request payload: the request header of the right version, then the body. The int32 size
 * prefix of the frame is left to the connection (or use {@link encodeRequestFrame}).
 */
export function encodeRequest<A extends ApiName>(
  api: A,
  version: number,
  header: RequestHeaderFields,
  request: RequestOf<A>,
): Buffer {
  return writeRequest(new Writer(512), api, version, header, request).toBuffer();
}

/** Like {@link encodeRequest}, with the int32 size prefix in front: the bytes to write to the socket, in one buffer. */
export function encodeRequestFrame<A extends ApiName>(
  api: A,
  version: number,
  header: RequestHeaderFields,
  request: RequestOf<A>,
): Buffer {
  const frame = writeRequest(new Writer(512).writeInt32(0), api, version, header, request).toBuffer();
  frame.writeInt32BE(frame.length - 4, 0);
  return frame;
}

function writeRequest<A extends ApiName>(
  writer: Writer,
  api: A,
  version: number,
  header: RequestHeaderFields,
  request: RequestOf<A>,
): Writer {
  const codec = getCodec(api, version);
  writeRequestHeader(
    writer,
    { apiKey: codec.apiKey, apiVersion: version, correlationId: header.correlationId, clientId: header.clientId },
    codec.requestHeaderVersion,
  );
  codec.writeRequest(writer, request);
  return writer;
}

/** A decoded response payload. */
export interface DecodedResponse<R> {
  correlationId: number;
  response: R;
}

/**
 * Decodes a complete response payload (after the size prefix): strips the response header of the right version
 * and decodes the body. Pure: error codes are returned as data.
 */
export function decodeResponse<A extends ApiName>(
  api: A,
  version: number,
  payload: Buffer,
): DecodedResponse<ResponseOf<A>> {
  const codec = getCodec(api, version);
  const reader = new Reader(payload);
  const { correlationId } = readResponseHeader(reader, codec.responseHeaderVersion);
  return { correlationId, response: codec.readResponse(reader) };
}
