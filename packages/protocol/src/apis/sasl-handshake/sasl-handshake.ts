import type { ApiImplementation } from '../definition';

/** SaslHandshake request. */
export interface SaslHandshakeRequest {
  /** The SASL mechanism, for example `PLAIN` or `SCRAM-SHA-256`. */
  mechanism: string;
}

/** SaslHandshake response. */
export interface SaslHandshakeResponse {
  errorCode: number;
  /** The mechanisms the broker enables. */
  mechanisms: string[];
}

/** SaslHandshake (key 17), v1 (v1 wraps the SASL exchange in SaslAuthenticate requests). No flexible version. */
export const saslHandshakeApi: ApiImplementation<SaslHandshakeRequest, SaslHandshakeResponse> = {
  apiName: 'SaslHandshake',
  minVersion: 1,
  maxVersion: 1,
  firstFlexibleVersion: Infinity,
  writeRequest(writer, request, { encoding }) {
    encoding.writeString(writer, request.mechanism);
  },
  readResponse(reader, { encoding }) {
    const errorCode = reader.readInt16();
    const mechanisms = encoding.readArray(reader, (r) => encoding.readString(r));
    return { errorCode, mechanisms };
  },
};
