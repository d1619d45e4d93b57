import type * as tls from 'node:tls';
import {
  KAFKA_ERROR_CODES,
  decodeResponse,
  encodeRequest,
  isKafkaProtocolError,
  KafkaError,
  kafkaErrorByCode,
  negotiateVersions,
  requireVersion,
  type ApiName,
  type NegotiatedVersions,
  type RequestOf,
  type ResponseOf,
} from '@kiel/protocol';
import { KielError } from '../errors';
import { ScramClient, type ScramMechanism } from '../sasl/scram';
import { Connection } from './connection';

/** SASL settings. PLAIN sends the password in the clear: use it with TLS. */
export type SaslOptions =
  | { readonly mechanism: 'PLAIN'; readonly username: string; readonly password: string }
  | { readonly mechanism: ScramMechanism; readonly username: string; readonly password: string };

/** Options shared by every broker connection of a client. */
export interface BrokerConnectionOptions {
  readonly clientId: string;
  readonly tls?: boolean | tls.ConnectionOptions;
  readonly sasl?: SaslOptions;
  /** Milliseconds to open the socket, negotiate versions and authenticate. Default 10 000. */
  readonly connectTimeout?: number;
  /** Default per-request timeout in milliseconds. Default 30 000. */
  readonly requestTimeout?: number;
}

/** The newest ApiVersions we implement; brokers too old for it answer in v0 format, and we retry with v0. */
const API_VERSIONS_PROBE = 3;

/**
 * A connection to one broker that speaks Kafka: it negotiates API versions on connect, authenticates with SASL
 * when configured, then encodes requests and decodes responses at the negotiated versions.
 */
export class Broker {
  /** The broker's node id, or -1 for a bootstrap address whose id is not known yet. */
  readonly nodeId: number;
  readonly host: string;
  readonly port: number;
  private readonly options: BrokerConnectionOptions;
  private connection: Connection | undefined;
  private connecting: Promise<void> | undefined;
  private negotiated: NegotiatedVersions | undefined;
  /** Closed for good: a send after close() fails instead of opening a connection nobody would close. */
  private closed = false;

  constructor(nodeId: number, host: string, port: number, options: BrokerConnectionOptions) {
    this.nodeId = nodeId;
    this.host = host;
    this.port = port;
    this.options = options;
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  /** True once connected, negotiated and authenticated, until the connection drops. */
  get connected(): boolean {
    return this.connection?.connected === true && this.negotiated !== undefined;
  }

  /** The versions negotiated with this broker (connect first). */
  get versions(): NegotiatedVersions {
    if (!this.negotiated)
      throw new KielError('ERR_CONNECTION', `broker ${this.address} is not connected`, { retriable: true });
    return this.negotiated;
  }

  /**
   * Connects, negotiates and authenticates; concurrent callers share one attempt. A dropped connection reconnects;
   * after close() it fails with a retriable ERR_CONNECTION (the cluster hands out a new Broker for the node).
   */
  connect(): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    if (this.connected) return Promise.resolve();
    if (!this.connecting) {
      this.connecting = this.open().finally(() => {
        this.connecting = undefined;
      });
    }
    return this.connecting;
  }

  /** Sends a request at the negotiated version of `api` and resolves with the decoded response. */
  async send<A extends ApiName>(
    api: A,
    request: RequestOf<A>,
    options: { timeout?: number } = {},
  ): Promise<ResponseOf<A>> {
    await this.connect();
    const version = requireVersionOrThrow(this.versions, api, this.address);
    return this.sendAt(api, version, request, options);
  }

  /** Closes the connection for good; pending and later requests reject with a retriable ERR_CONNECTION. */
  close(): void {
    this.closed = true;
    this.connection?.close();
    this.connection = undefined;
    this.negotiated = undefined;
  }

  private async sendAt<A extends ApiName>(
    api: A,
    version: number,
    request: RequestOf<A>,
    options: { timeout?: number } = {},
  ): Promise<ResponseOf<A>> {
    const connection = this.connection;
    if (!connection) {
      throw new KielError('ERR_CONNECTION', `broker ${this.address} is not connected`, {
        retriable: true,
        location: this.address,
      });
    }
    const payload = encodeRequest(api, version, { correlationId: 0, clientId: this.options.clientId }, request);
    const frame = await connection.request(payload, options);
    try {
      return decodeResponse(api, version, frame).response;
    } catch (err) {
      if (isKafkaProtocolError(err)) {
        connection.close();
        throw new KielError(
          'ERR_PROTOCOL',
          `broker ${this.address} sent a malformed ${api} v${version} response: ${err.message}`,
          {
            location: this.address,
            cause: err,
          },
        );
      }
      throw err;
    }
  }

  private async open(apiVersionsProbe = API_VERSIONS_PROBE): Promise<void> {
    this.connection?.close();
    this.negotiated = undefined;
    const connectTimeout = this.options.connectTimeout ?? 10_000;
    const connection = new Connection({
      host: this.host,
      port: this.port,
      connectTimeout,
      requestTimeout: this.options.requestTimeout ?? 30_000,
      ...(this.options.tls !== undefined ? { tls: this.options.tls } : {}),
    });
    this.connection = connection;
    connection.once('close', () => {
      if (this.connection === connection) {
        this.connection = undefined;
        this.negotiated = undefined;
      }
    });
    let negotiated: NegotiatedVersions | undefined;
    try {
      await connection.connect();
      negotiated = await this.negotiate(apiVersionsProbe, connectTimeout);
      if (negotiated && this.options.sasl) await this.authenticate(this.options.sasl, negotiated, connectTimeout);
    } catch (err) {
      connection.close();
      throw err;
    }
    // A broker that does not know our probe version answers in the v0 layout: ask again in v0.
    if (!negotiated) return this.open(0);
    // Closed while negotiating: the connection was closed with it; do not report it as open.
    if (this.closed) throw this.closedError();
    this.negotiated = negotiated;
  }

  private closedError(): KielError {
    return new KielError('ERR_CONNECTION', `broker ${this.address}: the connection was closed`, {
      retriable: true,
      location: this.address,
    });
  }

  /** ApiVersions at `version`; undefined when the broker wants an older version of ApiVersions itself. */
  private async negotiate(version: number, timeout: number): Promise<NegotiatedVersions | undefined> {
    const request = version >= 3 ? { clientSoftwareName: 'kiel-ts', clientSoftwareVersion: '0.1.0' } : {};
    let response;
    try {
      response = await this.sendAt('ApiVersions', version, request, { timeout });
    } catch (err) {
      if (version > 0 && err instanceof KielError && err.code === 'ERR_PROTOCOL') return undefined;
      throw err;
    }
    if (version > 0 && response.errorCode === KAFKA_ERROR_CODES.UNSUPPORTED_VERSION) return undefined;
    if (response.errorCode !== KAFKA_ERROR_CODES.NONE) {
      throw kafkaError(response.errorCode, `ApiVersions with broker ${this.address}`, this.address);
    }
    return negotiateVersions(response.apiKeys);
  }

  private async authenticate(sasl: SaslOptions, versions: NegotiatedVersions, timeout: number): Promise<void> {
    const where = `SASL ${sasl.mechanism} with broker ${this.address}`;
    const handshakeVersion = requireVersionOrThrow(versions, 'SaslHandshake', this.address);
    const handshake = await this.sendAt('SaslHandshake', handshakeVersion, { mechanism: sasl.mechanism }, { timeout });
    if (handshake.errorCode === KAFKA_ERROR_CODES.UNSUPPORTED_SASL_MECHANISM) {
      throw new KielError(
        'ERR_SASL',
        `${where}: the broker does not enable ${sasl.mechanism}; it offers ${handshake.mechanisms.join(', ') || 'none'}`,
        { location: this.address },
      );
    }
    if (handshake.errorCode !== KAFKA_ERROR_CODES.NONE) {
      throw saslFailure(where, handshake.errorCode, null, this.address);
    }
    const authVersion = requireVersionOrThrow(versions, 'SaslAuthenticate', this.address);
    const exchange = async (authBytes: Buffer): Promise<Buffer> => {
      const answer = await this.sendAt('SaslAuthenticate', authVersion, { authBytes }, { timeout });
      if (answer.errorCode !== KAFKA_ERROR_CODES.NONE) {
        throw saslFailure(where, answer.errorCode, answer.errorMessage, this.address);
      }
      return answer.authBytes;
    };
    if (sasl.mechanism === 'PLAIN') {
      await exchange(Buffer.from(`\u0000${sasl.username}\u0000${sasl.password}`, 'utf8'));
      return;
    }
    const scram = new ScramClient({ mechanism: sasl.mechanism, username: sasl.username, password: sasl.password });
    const serverFirst = await exchange(scram.firstMessage());
    const serverFinal = await exchange(scram.finalMessage(serverFirst));
    scram.verifyServerFinal(serverFinal);
  }
}

function requireVersionOrThrow(versions: NegotiatedVersions, api: ApiName, address: string): number {
  try {
    return requireVersion(versions, api);
  } catch (err) {
    throw new KielError('ERR_UNSUPPORTED_VERSION', `broker ${address}: ${(err as Error).message}`, {
      location: address,
      cause: err,
    });
  }
}

function saslFailure(where: string, errorCode: number, brokerMessage: string | null, address: string): KielError {
  const name = kafkaErrorByCode(errorCode)?.name ?? `error ${errorCode}`;
  return new KielError('ERR_SASL', `${where} failed: ${name}${brokerMessage ? `: ${brokerMessage}` : ''}`, {
    location: address,
    kafkaError: name,
    errorCode,
  });
}

/**
 * A KielError (`ERR_KAFKA`) for a Kafka error code returned by a broker. Its message, `kafkaError` name and
 * `retriable` flag are the protocol package's {@link KafkaError} for that code, which it keeps as `cause`.
 */
export function kafkaError(
  errorCode: number,
  context: string,
  location?: string,
  brokerMessage?: string | null,
): KielError {
  const kafka = new KafkaError(errorCode, { context, brokerMessage });
  return new KielError('ERR_KAFKA', kafka.message, {
    retriable: kafka.retriable,
    kafkaError: kafka.code,
    errorCode,
    cause: kafka,
    ...(location !== undefined ? { location } : {}),
  });
}
