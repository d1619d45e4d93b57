// A minimal Kafka client over a plain socket, for tests only: one request at a time, frames in and out. The
// production connection layer lives in @kiel/consumer.
import * as net from 'node:net';
import { decodeResponse, encodeRequestFrame, type ApiName, type RequestOf, type ResponseOf } from '../../src';

function firstAddress(list: string): { host: string; port: number } {
  const first = list.split(',')[0].trim();
  const colon = first.lastIndexOf(':');
  return { host: first.slice(0, colon), port: Number(first.slice(colon + 1)) };
}

/** host and port of the first broker of KAFKA_BROKERS (default 127.0.0.1:9092). */
export function brokerAddress(): { host: string; port: number } {
  return firstAddress(process.env.KAFKA_BROKERS ?? '127.0.0.1:9092');
}

/** The SASL_PLAINTEXT listener of the local stack and its user (KAFKA_SASL_BROKERS, _USER, _PASSWORD). */
export function saslBroker(): { host: string; port: number; user: string; password: string } {
  return {
    ...firstAddress(process.env.KAFKA_SASL_BROKERS ?? '127.0.0.1:9094'),
    user: process.env.KAFKA_SASL_USER ?? 'kiel',
    password: process.env.KAFKA_SASL_PASSWORD ?? 'kiel-secret',
  };
}

export class KafkaSocket {
  private buffered = Buffer.alloc(0);
  private waiting: { resolve: (payload: Buffer) => void; reject: (err: Error) => void } | null = null;
  private correlationId = 0;
  private failure: Error | null = null;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('socket closed')));
  }

  static connect(address = brokerAddress()): Promise<KafkaSocket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(address.port, address.host, () => {
        socket.off('error', reject);
        resolve(new KafkaSocket(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Sends a request and returns the raw response payload (header included). */
  async send<A extends ApiName>(api: A, version: number, request: RequestOf<A>): Promise<Buffer> {
    const frame = encodeRequestFrame(
      api,
      version,
      { correlationId: ++this.correlationId, clientId: 'kiel-test' },
      request,
    );
    return this.sendFrame(frame);
  }

  /** Sends a request and decodes the response, checking the correlation id. */
  async request<A extends ApiName>(api: A, version: number, request: RequestOf<A>): Promise<ResponseOf<A>> {
    const raw = await this.send(api, version, request);
    const { correlationId, response } = decodeResponse(api, version, raw);
    if (correlationId !== this.correlationId) {
      throw new Error(`correlation id ${correlationId}, expected ${this.correlationId}`);
    }
    return response;
  }

  /** Writes one size-prefixed frame and resolves with the response payload (after the size). */
  sendFrame(frame: Buffer): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.waiting) return Promise.reject(new Error('one request at a time'));
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.socket.write(frame);
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.once('close', () => resolve());
      this.socket.end();
    });
  }

  private onData(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    if (this.buffered.length < 4) return;
    const size = this.buffered.readInt32BE(0);
    if (this.buffered.length < 4 + size) return;
    const payload = this.buffered.subarray(4, 4 + size);
    this.buffered = this.buffered.subarray(4 + size);
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.resolve(payload);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.reject(err);
  }
}
