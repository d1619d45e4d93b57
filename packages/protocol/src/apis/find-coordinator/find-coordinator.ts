import { KafkaProtocolError } from '../../errors';
import type { ApiImplementation } from '../definition';

/** Coordinator key types (FindCoordinator `key_type`). */
export const CoordinatorKeyType = {
  GROUP: 0,
  TRANSACTION: 1,
  SHARE: 2,
} as const;

/** FindCoordinator request. v0-v3 look up one `key`; v4+ look up a batch of `coordinatorKeys`. */
export interface FindCoordinatorRequest {
  /** v0-v3: the group id (or transactional id). For v4+ it is sent as a one-key batch when `coordinatorKeys` is absent. */
  key?: string;
  /** v1+: {@link CoordinatorKeyType}; default GROUP. v0 only knows groups. */
  keyType?: number;
  /** v4+: the keys to look up. For v0-v3 a single key here is accepted as `key`. */
  coordinatorKeys?: string[];
}

/** One coordinator of a v4+ batch. */
export interface FindCoordinatorResponseCoordinator {
  key: string;
  nodeId: number;
  host: string;
  port: number;
  errorCode: number;
  errorMessage: string | null;
}

/** FindCoordinator response. v0-v3 fill the top-level fields, v4+ fill `coordinators`. */
export interface FindCoordinatorResponse {
  /** v1+; 0 before. */
  throttleTimeMs: number;
  /** v0-v3; 0 in v4+ (see `coordinators`). */
  errorCode: number;
  /** v1-v3; null otherwise. */
  errorMessage: string | null;
  /** v0-v3; -1 in v4+. */
  nodeId: number;
  /** v0-v3; empty in v4+. */
  host: string;
  /** v0-v3; -1 in v4+. */
  port: number;
  /** v4+; empty before. */
  coordinators: FindCoordinatorResponseCoordinator[];
}

/** FindCoordinator (key 10), v0-v4. Flexible from v3. */
export const findCoordinatorApi: ApiImplementation<FindCoordinatorRequest, FindCoordinatorResponse> = {
  apiName: 'FindCoordinator',
  minVersion: 0,
  maxVersion: 4,
  firstFlexibleVersion: 3,
  writeRequest(writer, request, { version, encoding }) {
    const keyType = request.keyType ?? CoordinatorKeyType.GROUP;
    if (version >= 4) {
      const keys = request.coordinatorKeys ?? (request.key === undefined ? undefined : [request.key]);
      if (!keys) throw new KafkaProtocolError('ERR_INVALID_ARGUMENT', `FindCoordinator v${version} needs keys`);
      writer.writeInt8(keyType);
      encoding.writeArray(writer, keys, (w, key) => encoding.writeString(w, key));
    } else {
      const key = request.key ?? (request.coordinatorKeys?.length === 1 ? request.coordinatorKeys[0] : undefined);
      if (key === undefined) {
        throw new KafkaProtocolError('ERR_INVALID_ARGUMENT', `FindCoordinator v${version} needs exactly one key`);
      }
      if (version === 0 && keyType !== CoordinatorKeyType.GROUP) {
        throw new KafkaProtocolError('ERR_INVALID_ARGUMENT', 'FindCoordinator v0 only finds group coordinators');
      }
      encoding.writeString(writer, key);
      if (version >= 1) writer.writeInt8(keyType);
    }
    encoding.writeTaggedFields(writer);
  },
  readResponse(reader, { version, encoding }) {
    const throttleTimeMs = version >= 1 ? reader.readInt32() : 0;
    if (version >= 4) {
      const coordinators = encoding.readArray(reader, (r): FindCoordinatorResponseCoordinator => {
        const coordinator = {
          key: encoding.readString(r),
          nodeId: r.readInt32(),
          host: encoding.readString(r),
          port: r.readInt32(),
          errorCode: r.readInt16(),
          errorMessage: encoding.readNullableString(r),
        };
        encoding.readTaggedFields(r);
        return coordinator;
      });
      encoding.readTaggedFields(reader);
      return { throttleTimeMs, errorCode: 0, errorMessage: null, nodeId: -1, host: '', port: -1, coordinators };
    }
    const errorCode = reader.readInt16();
    const errorMessage = version >= 1 ? encoding.readNullableString(reader) : null;
    const nodeId = reader.readInt32();
    const host = encoding.readString(reader);
    const port = reader.readInt32();
    encoding.readTaggedFields(reader);
    return { throttleTimeMs, errorCode, errorMessage, nodeId, host, port, coordinators: [] };
  },
};
