import type { ApiImplementation } from '../definition';

/** SaslAuthenticate request. */
export interface SaslAuthenticateRequest {
  /** The SASL mechanism's bytes for this step. */
  authBytes: Uint8Array;
}

/** SaslAuthenticate response. */
export interface SaslAuthenticateResponse {
  errorCode: number;
  errorMessage: string | null;
  /** The server's SASL bytes for this step (a view into the response). */
  authBytes: Buffer;
  /** v1+: ms until the session expires and the client must re-authenticate (KIP-368), 0 for never or before v1. */
  sessionLifetimeMs: number;
}

/** SaslAuthenticate (key 36), v0-v2. Flexible from v2. */
export const saslAuthenticateApi: ApiImplementation<SaslAuthenticateRequest, SaslAuthenticateResponse> = {
  apiName: 'SaslAuthenticate',
  minVersion: 0,
  maxVersion: 2,
  firstFlexibleVersion: 2,
  writeRequest(writer, request, { encoding }) {
    encoding.writeBytes(writer, request.authBytes);
    encoding.writeTaggedFields(writer);
  },
  readResponse(reader, { version, encoding }) {
    const errorCode = reader.readInt16();
    const errorMessage = encoding.readNullableString(reader);
    const authBytes = encoding.readBytes(reader);
    const sessionLifetimeMs = version >= 1 ? reader.readInt64Number() : 0;
    encoding.readTaggedFields(reader);
    return { errorCode, errorMessage, authBytes, sessionLifetimeMs };
  },
};
