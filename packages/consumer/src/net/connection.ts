import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { KielError } from '../errors';

/** Correlation ids are int32 and must stay positive: after 2^31-1 they wrap to 0. */
const MAX_CORRELATION_ID = 0x7fffffff;
/** Reads between frames (plain TCP) go to a reused buffer of this size. */
const SCRATCH_SIZE = 64 * 1024;
/** Offset of the correlation id in every request header version (after api key and api version, 2 × int16). */
const REQUEST_CORRELATION_OFFSET = 4;

/** Options of a {@link Connection}. */
export interface ConnectionOptions {
  readonly host: string;
  readonly port: number;
  /** TLS: `true` for defaults, or Node's `tls.connect` options (ca, cert, key, rejectUnauthorized, ...). */
  readonly tls?: boolean | tls.ConnectionOptions;
  /** Milliseconds to establish TCP (and TLS). Default 10 000. */
  readonly connectTimeout?: number;
  /** Default per-request timeout in milliseconds. Default 30 000. */
  readonly requestTimeout?: number;
  /** Responses larger than this many bytes close the connection as malformed. Default 256 MiB. */
  readonly maxFrameSize?: number;
}

/** Events of a {@link Connection}. */
export interface ConnectionEvents {
  /** The connection closed, for whatever reason; `error` is set when it was not a local close(). Discard it. */
  close: [error: KielError | undefined];
}

interface Pending {
  resolve(frame: Buffer): void;
  reject(error: KielError): void;
  timer: NodeJS.Timeout;
}

/**
 * One TCP (or TLS) connection to a broker. It moves frames (an int32 size, then the payload) and matches
 * responses to requests by correlation id; it knows nothing about particular APIs. Many requests can be in
 * flight at once, each with its own timeout. When it closes, every pending request is rejected with a
 * retriable `ERR_CONNECTION`.
 */
export class Connection extends EventEmitter<ConnectionEvents> {
  readonly host: string;
  readonly port: number;
  private readonly options: ConnectionOptions;
  private socket: net.Socket | undefined;
  private readonly pending = new Map<number, Pending>();
  /** Ids whose request timed out: their late answers are dropped instead of failing the connection. */
  private readonly abandoned = new Set<number>();
  private nextCorrelationId = 0;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private frameSize = -1;
  /** Plain TCP reads (see {@link readInto}): the frame being filled, how far, and the bytes of a size prefix. */
  private frame: Buffer | undefined;
  private frameFilled = 0;
  private readonly head = Buffer.allocUnsafe(4);
  private headFilled = 0;
  private scratch: Buffer | undefined;
  private closedError: KielError | undefined;
  private closed = false;

  constructor(options: ConnectionOptions) {
    super();
    this.options = options;
    this.host = options.host;
    this.port = options.port;
  }

  /** `host:port`, for messages. */
  get address(): string {
    return `${this.host}:${this.port}`;
  }

  /** True while the socket is open and usable. */
  get connected(): boolean {
    return this.socket !== undefined && !this.closed;
  }

  /** Number of requests awaiting an answer. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Opens the socket. Rejects with ERR_CONNECTION, or ERR_TLS for a TLS failure, within `connectTimeout`. */
  connect(): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError ?? this.closedLocally());
    if (this.socket) return Promise.resolve();
    const timeout = this.options.connectTimeout ?? 10_000;
    const useTls = this.options.tls !== undefined && this.options.tls !== false;
    return new Promise<void>((resolve, reject) => {
      const socket = useTls
        ? tls.connect({
            host: this.host,
            port: this.port,
            servername: net.isIP(this.host) ? undefined : this.host,
            ...(typeof this.options.tls === 'object' ? this.options.tls : {}),
          })
        : net.connect({
            host: this.host,
            port: this.port,
            // The socket reads into the buffer nextRead() hands it: a large response straight into its own frame.
            onread: { buffer: () => this.nextRead(), callback: (n: number, buf: Uint8Array) => this.onRead(n, buf) },
          });
      socket.setNoDelay(true);
      let settled = false;
      const fail = (error: KielError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        this.closed = true;
        this.closedError = error;
        reject(error);
      };
      const timer = setTimeout(
        () =>
          fail(
            new KielError('ERR_CONNECTION', `connecting to broker ${this.address} timed out after ${timeout} ms`, {
              retriable: true,
              location: this.address,
            }),
          ),
        timeout,
      );
      socket.once(useTls ? 'secureConnect' : 'connect', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.socket = socket;
        if (useTls) socket.on('data', (chunk: Buffer) => this.onData(chunk));
        socket.on('error', (err) => this.fail(this.socketError(err, useTls)));
        socket.on('close', () => this.fail(this.remoteClose()));
        resolve();
      });
      socket.once('error', (err) => fail(this.socketError(err, useTls)));
      socket.once('close', () => fail(this.remoteClose()));
    });
  }

  /**
   * Sends one request and resolves with the response frame (starting with its correlation id). `payload` is the
   * request header and body, without the size prefix; its correlation id field is overwritten here.
   */
  request(payload: Buffer, options: { timeout?: number } = {}): Promise<Buffer> {
    const socket = this.socket;
    if (this.closed || !socket) {
      return Promise.reject(
        this.closedError ??
          new KielError('ERR_CONNECTION', `connection to broker ${this.address} is not open`, {
            retriable: true,
            location: this.address,
          }),
      );
    }
    const correlationId = this.allocateCorrelationId();
    payload.writeInt32BE(correlationId, REQUEST_CORRELATION_OFFSET);
    const timeout = options.timeout ?? this.options.requestTimeout ?? 30_000;
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.delete(correlationId)) {
          this.abandoned.add(correlationId);
          reject(
            new KielError('ERR_REQUEST_TIMEOUT', `broker ${this.address} did not answer within ${timeout} ms`, {
              retriable: true,
              location: this.address,
            }),
          );
        }
      }, timeout);
      this.pending.set(correlationId, { resolve, reject, timer });
      const size = Buffer.allocUnsafe(4);
      size.writeInt32BE(payload.length, 0);
      socket.cork();
      socket.write(size);
      socket.write(payload);
      socket.uncork();
    });
  }

  /** Closes the socket and rejects pending requests with a retriable ERR_CONNECTION. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.fail(undefined);
  }

  private allocateCorrelationId(): number {
    // Skip ids still awaiting an answer; with 2^31 ids this loop practically never runs more than once.
    for (;;) {
      const id = this.nextCorrelationId;
      this.nextCorrelationId = id >= MAX_CORRELATION_ID ? 0 : id + 1;
      if (!this.pending.has(id)) {
        this.abandoned.delete(id);
        return id;
      }
    }
  }

  /**
   * Where the socket's next read goes (plain TCP). Once a frame's size is known its whole buffer is allocated and
   * the kernel reads the rest of it straight there, at most up to its end: a fetch response of megabytes is never
   * assembled from 64 KiB socket chunks and copied again, and those chunks are never allocated (memory outside V8's
   * heap that, allocated fast, makes V8 collect garbage more often). Between frames reads go to one reused scratch
   * buffer; what they hold is copied out, a frame at a time.
   */
  private nextRead(): Buffer {
    if (this.frame !== undefined) return this.frame.subarray(this.frameFilled);
    return (this.scratch ??= Buffer.allocUnsafeSlow(SCRATCH_SIZE));
  }

  /** `n` bytes were read into `buf`, the buffer {@link nextRead} returned. */
  private onRead(n: number, buf: Uint8Array): true {
    this.readBytes(n, buf);
    return true; // keep reading
  }

  private readBytes(n: number, buf: Uint8Array): void {
    if (this.closed) return;
    if (buf.buffer !== this.scratch?.buffer) {
      // Read straight into the frame (the scratch buffer is allocated alone, so it shares no memory with a frame).
      this.frameFilled += n;
      if (this.frameFilled === this.frame!.length) this.frameDone();
      return;
    }
    let pos = 0;
    while (pos < n && !this.closed) {
      if (this.frame === undefined) {
        const want = Math.min(4 - this.headFilled, n - pos);
        for (let i = 0; i < want; i++) this.head[this.headFilled++] = buf[pos + i]!;
        pos += want;
        if (this.headFilled < 4) return;
        this.headFilled = 0;
        const size = this.head.readInt32BE(0);
        if (!this.checkSize(size)) return;
        this.frame = Buffer.allocUnsafe(size);
        this.frameFilled = 0;
      }
      const frame = this.frame;
      const want = Math.min(frame.length - this.frameFilled, n - pos);
      frame.set(buf.subarray(pos, pos + want), this.frameFilled);
      this.frameFilled += want;
      pos += want;
      if (this.frameFilled === frame.length) this.frameDone();
    }
  }

  private frameDone(): void {
    const frame = this.frame!;
    this.frame = undefined;
    this.frameFilled = 0;
    this.dispatch(frame);
  }

  /** False (and the connection failed) when a size prefix is out of bounds. */
  private checkSize(size: number): boolean {
    const max = this.options.maxFrameSize ?? 256 * 1024 * 1024;
    if (size >= 4 && size <= max) return true;
    this.fail(
      new KielError('ERR_PROTOCOL', `broker ${this.address} sent a frame of ${size} bytes (limit ${max})`, {
        location: this.address,
      }),
    );
    return false;
  }

  /** TLS: Node's TLS sockets hand out decrypted chunks ('data'); frames are cut from them. */
  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (!this.closed) {
      if (this.frameSize < 0) {
        if (this.buffered < 4) return;
        const head = this.take(4);
        const size = head.readInt32BE(0);
        if (!this.checkSize(size)) return;
        this.frameSize = size;
      }
      if (this.buffered < this.frameSize) return;
      const frame = this.take(this.frameSize);
      this.frameSize = -1;
      this.dispatch(frame);
    }
  }

  /** Removes `n` bytes from the front of the buffered chunks, copying only when a frame spans chunks. */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const c = this.chunks[0]!;
        const want = n - filled;
        if (c.length <= want) {
          c.copy(out, filled);
          filled += c.length;
          this.chunks.shift();
        } else {
          c.copy(out, filled, 0, want);
          filled += want;
          this.chunks[0] = c.subarray(want);
        }
      }
    }
    this.buffered -= n;
    return out;
  }

  private dispatch(frame: Buffer): void {
    const correlationId = frame.readInt32BE(0);
    const entry = this.pending.get(correlationId);
    if (!entry) {
      if (this.abandoned.delete(correlationId)) return;
      this.fail(
        new KielError('ERR_PROTOCOL', `broker ${this.address} answered unknown correlation id ${correlationId}`, {
          location: this.address,
        }),
      );
      return;
    }
    this.pending.delete(correlationId);
    clearTimeout(entry.timer);
    entry.resolve(frame);
  }

  private fail(error: KielError | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.closedError = error;
    this.socket?.destroy();
    const reason = error ?? this.closedLocally();
    for (const [, entry] of this.pending) {
      clearTimeout(entry.timer);
      entry.reject(reason);
    }
    this.pending.clear();
    this.abandoned.clear();
    this.chunks = [];
    this.buffered = 0;
    this.frame = undefined;
    this.scratch = undefined;
    this.emit('close', error);
  }

  private closedLocally(): KielError {
    return new KielError('ERR_CONNECTION', `connection to broker ${this.address} was closed`, {
      retriable: true,
      location: this.address,
    });
  }

  private remoteClose(): KielError {
    return new KielError('ERR_CONNECTION', `broker ${this.address} closed the connection`, {
      retriable: true,
      location: this.address,
    });
  }

  private socketError(err: Error & { code?: string }, useTls: boolean): KielError {
    const code = err.code ?? '';
    const tlsProblem =
      useTls &&
      (/^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_)/.test(code) || /SELF_SIGNED|certificate/i.test(code + err.message));
    if (tlsProblem) {
      return new KielError('ERR_TLS', `TLS with broker ${this.address} failed: ${err.message}`, {
        location: this.address,
        cause: err,
      });
    }
    return new KielError('ERR_CONNECTION', `connection to broker ${this.address} failed: ${err.message}`, {
      retriable: true,
      location: this.address,
      cause: err,
    });
  }
}
