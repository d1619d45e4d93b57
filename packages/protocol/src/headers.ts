import { KafkaProtocolError } from './errors';
import type { Reader } from './primitives/reader';
import type { Writer } from './primitives/writer';

/**
 * Request header versions. v0: api_key api_version correlation_id. v1 adds client_id (NULLABLE_STRING, even in
 * flexible versions). v2 adds tagged fields and is used by flexible API versions.
 */
export type RequestHeaderVersion = 0 | 1 | 2;

/** Response header versions. v0: correlation_id. v1 adds tagged fields and is used by flexible API versions. */
export type ResponseHeaderVersion = 0 | 1;

/** The fields of a request header. */
export interface RequestHeader {
  apiKey: number;
  apiVersion: number;
  /** Matches the response to the request; the connection layer picks it (wrapping at 2^31 - 1). */
  correlationId: number;
  /** Shown in broker logs and quotas; ignored by header v0. */
  clientId?: string | null;
}

/** The fields of a response header. */
export interface ResponseHeader {
  correlationId: number;
}

/** Writes a request header of the given version. */
export function writeRequestHeader(writer: Writer, header: RequestHeader, headerVersion: RequestHeaderVersion): void {
  writer.writeInt16(header.apiKey).writeInt16(header.apiVersion).writeInt32(header.correlationId);
  if (headerVersion >= 1) writer.writeNullableString(header.clientId ?? null);
  if (headerVersion >= 2) writer.writeTaggedFields();
}

/** Reads a request header of the given version (useful to tests and to anyone writing a broker stub). */
export function readRequestHeader(reader: Reader, headerVersion: RequestHeaderVersion): RequestHeader {
  const apiKey = reader.readInt16();
  const apiVersion = reader.readInt16();
  const correlationId = reader.readInt32();
  const clientId = headerVersion >= 1 ? reader.readNullableString() : null;
  if (headerVersion >= 2) reader.readTaggedFields();
  return { apiKey, apiVersion, correlationId, clientId };
}

/** Writes a response header of the given version. */
export function writeResponseHeader(
  writer: Writer,
  header: ResponseHeader,
  headerVersion: ResponseHeaderVersion,
): void {
  writer.writeInt32(header.correlationId);
  if (headerVersion >= 1) writer.writeTaggedFields();
}

/** Reads a response header of the given version; unknown tagged fields are skipped. */
export function readResponseHeader(reader: Reader, headerVersion: ResponseHeaderVersion): ResponseHeader {
  const correlationId = reader.readInt32();
  if (headerVersion >= 1) reader.readTaggedFields();
  return { correlationId };
}

/**
 * Reads only the correlation id at the start of a response payload, which is all a connection needs to route it
 * before it knows which request (and so which header version) the response answers.
 */
export function peekCorrelationId(payload: Buffer): number {
  if (payload.length < 4) {
    throw new KafkaProtocolError('ERR_BUFFER_UNDERFLOW', 'response is shorter than its correlation id', { offset: 0 });
  }
  return payload.readInt32BE(0);
}
