import * as fs from 'node:fs';
import * as net from 'node:net';
import { freePort } from '@kiel/test-kit';
import { Connection } from '../src/net/connection';

const [kafkaHost, kafkaPort] = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',')[0]!.split(':');
const tlsBroker = (process.env.KAFKA_TLS_BROKERS ?? '127.0.0.1:9095').split(':');
const tlsCa = process.env.KAFKA_TLS_CA ?? `${__dirname}/../../../.stack/kafka/tls/ca.pem`;

/** ApiVersions v0 request (header v1), written from the protocol guide: api key 18, version 0, client id "t". */
function apiVersionsV0(): Buffer {
  return Buffer.from('0012' + '0000' + '00000000' + '0001' + '74', 'hex');
}

/** A local TCP server for cases a real broker cannot produce on demand (silence, odd chunking). */
async function fakeBroker(
  onFrame: (socket: net.Socket, frame: Buffer) => void,
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readInt32BE(0)) {
        const size = buf.readInt32BE(0);
        onFrame(socket, buf.subarray(4, 4 + size));
        buf = buf.subarray(4 + size);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Answers each request with a frame holding its correlation id and a marker. */
function echo(socket: net.Socket, frame: Buffer, split = false): void {
  const out = Buffer.alloc(4 + 4 + 2);
  out.writeInt32BE(6, 0);
  out.writeInt32BE(frame.readInt32BE(4), 4);
  out.writeInt16BE(0x4b4c, 8);
  if (!split) socket.write(out);
  else for (const byte of out) socket.write(Buffer.from([byte]));
}

describe('Connection against the real broker', () => {
  it('keeps 200 requests in flight on one connection and matches every answer to its request', async () => {
    const conn = new Connection({ host: kafkaHost!, port: Number(kafkaPort) });
    await conn.connect();
    try {
      const frames = await Promise.all(Array.from({ length: 200 }, () => conn.request(apiVersionsV0())));
      const ids = frames.map((f) => f.readInt32BE(0));
      expect(new Set(ids).size).toBe(200);
      for (const f of frames) expect(f.readInt16BE(4)).toBe(0); // error_code NONE
    } finally {
      conn.close();
    }
  });

  it('speaks TLS with the broker certificate, and reports ERR_TLS when the certificate is not trusted', async () => {
    const ok = new Connection({ host: tlsBroker[0]!, port: Number(tlsBroker[1]), tls: { ca: fs.readFileSync(tlsCa) } });
    await ok.connect();
    const frame = await ok.request(apiVersionsV0());
    expect(frame.readInt16BE(4)).toBe(0);
    ok.close();

    const untrusted = new Connection({ host: tlsBroker[0]!, port: Number(tlsBroker[1]), tls: true });
    await expect(untrusted.connect()).rejects.toMatchObject({ code: 'ERR_TLS', retriable: false });
  });

  it('fails fast with a retriable ERR_CONNECTION on a dead port', async () => {
    const port = await freePort();
    const conn = new Connection({ host: '127.0.0.1', port, connectTimeout: 2000 });
    const started = Date.now();
    await expect(conn.connect()).rejects.toMatchObject({ code: 'ERR_CONNECTION', retriable: true });
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('Connection framing and bookkeeping (local fake broker)', () => {
  it('wraps correlation ids from 2^31-1 to 0', async () => {
    const fake = await fakeBroker((s, f) => echo(s, f));
    const conn = new Connection({ host: '127.0.0.1', port: fake.port });
    await conn.connect();
    (conn as unknown as { nextCorrelationId: number }).nextCorrelationId = 0x7ffffffe;
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await conn.request(apiVersionsV0())).readInt32BE(0));
    expect(ids).toEqual([0x7ffffffe, 0x7fffffff, 0]);
    conn.close();
    await fake.close();
  });

  it('reassembles frames that arrive one byte at a time', async () => {
    const fake = await fakeBroker((s, f) => echo(s, f, true));
    const conn = new Connection({ host: '127.0.0.1', port: fake.port });
    await conn.connect();
    const frames = await Promise.all([conn.request(apiVersionsV0()), conn.request(apiVersionsV0())]);
    expect(frames.map((f) => f.readInt16BE(4))).toEqual([0x4b4c, 0x4b4c]);
    conn.close();
    await fake.close();
  });

  it('times out one request without failing the others, and drops its late answer', async () => {
    let n = 0;
    const held: Array<[net.Socket, Buffer]> = [];
    const fake = await fakeBroker((s, f) => (n++ === 0 ? held.push([s, Buffer.from(f)]) : echo(s, f)));
    const conn = new Connection({ host: '127.0.0.1', port: fake.port });
    await conn.connect();
    const slow = conn.request(apiVersionsV0(), { timeout: 100 });
    await expect(slow).rejects.toMatchObject({ code: 'ERR_REQUEST_TIMEOUT', retriable: true });
    const [socket, frame] = held[0]!;
    echo(socket, frame); // the late answer arrives now
    const fast = await conn.request(apiVersionsV0());
    expect(fast.readInt16BE(4)).toBe(0x4b4c);
    expect(conn.connected).toBe(true);
    conn.close();
    await fake.close();
  });

  it('rejects every pending request with a retriable ERR_CONNECTION on close, and is idempotent', async () => {
    const fake = await fakeBroker(() => undefined);
    const conn = new Connection({ host: '127.0.0.1', port: fake.port });
    await conn.connect();
    const pending = [conn.request(apiVersionsV0()), conn.request(apiVersionsV0())];
    conn.close();
    conn.close();
    for (const p of pending) await expect(p).rejects.toMatchObject({ code: 'ERR_CONNECTION', retriable: true });
    await expect(conn.request(apiVersionsV0())).rejects.toMatchObject({ code: 'ERR_CONNECTION' });
    await fake.close();
  });

  it('cuts mixed small and multi-megabyte frames out of arbitrarily split reads, each intact after later reads', async () => {
    // Sizes around the 64 KiB read buffer and far above it; answers coalesced and re-split at odd boundaries, so a
    // size prefix, a frame's end and the next frame's start land anywhere in a read.
    const sizes = [6, 3 * 1024 * 1024 + 7, 10, 65_536 - 4, 65_536, 65_537, 200_000, 5, 1_000_001, 4];
    const pattern = (id: number, i: number) => (id * 31 + i * 7) & 0xff;
    const answers: Buffer[] = [];
    let sent = false;
    const fake = await fakeBroker((socket, frame) => {
      const id = frame.readInt32BE(4);
      const size = sizes[id]!;
      const out = Buffer.alloc(4 + size);
      out.writeInt32BE(size, 0);
      out.writeInt32BE(id, 4);
      for (let i = 8; i < out.length; i++) out[i] = pattern(id, i - 4);
      answers.push(out);
      if (answers.length < sizes.length || sent) return;
      sent = true;
      const all = Buffer.concat(answers);
      for (let pos = 0, step = 1; pos < all.length; pos += step, step = (step * 7 + 3) % 150_001) {
        socket.write(all.subarray(pos, pos + step));
      }
    });
    const conn = new Connection({ host: '127.0.0.1', port: fake.port });
    await conn.connect();
    const frames = await Promise.all(sizes.map(() => conn.request(apiVersionsV0())));
    expect(frames.map((f) => f.length)).toEqual(sizes);
    frames.forEach((f, id) => {
      expect(f.readInt32BE(0)).toBe(id);
      let bad = -1;
      for (let i = 4; i < f.length && bad < 0; i++) if (f[i] !== pattern(id, i)) bad = i;
      expect({ id, bad }).toEqual({ id, bad: -1 });
    });
    conn.close();
    await fake.close();
  });

  it('closes with ERR_PROTOCOL when the broker sends a negative frame size', async () => {
    const fake = await fakeBroker((s) => s.write(Buffer.from('ffffffff', 'hex')));
    const conn = new Connection({ host: '127.0.0.1', port: fake.port });
    await conn.connect();
    await expect(conn.request(apiVersionsV0())).rejects.toMatchObject({ code: 'ERR_PROTOCOL' });
    await fake.close();
  });
});
