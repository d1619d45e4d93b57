/**
 * Test helper: the least of the Kafka protocol needed to pull one partition's raw records bytes from the real
 * broker, over a plain socket. Fetch v4 (the first version that reads record batches v2 and takes an isolation
 * level), request header v1. Part A's codecs replace this once they land.
 */
import * as net from 'node:net';
import * as path from 'node:path';

export const BROKER = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',')[0].trim();

/** kcat (librdkafka): Debian's, unpacked by scripts/stack (Jest's global setup fetches it and sets KCAT). */
export const KCAT = process.env.KCAT ?? path.join(__dirname, '../../../../.cache/stack/kcat/bin/kcat');

const FETCH = 1;

/** One partition of a Fetch v4 response. */
export interface RawPartition {
  errorCode: number;
  highWatermark: bigint;
  lastStableOffset: bigint;
  abortedTransactions: Array<{ producerId: bigint; firstOffset: bigint }> | null;
  records: Buffer;
}

function request(correlationId: number, body: Buffer): Buffer {
  const clientId = Buffer.from('kiel-protocol-test');
  const header = Buffer.alloc(10 + clientId.length);
  header.writeInt16BE(FETCH, 0);
  header.writeInt16BE(4, 2);
  header.writeInt32BE(correlationId, 4);
  header.writeInt16BE(clientId.length, 8);
  clientId.copy(header, 10);
  const size = Buffer.alloc(4);
  size.writeInt32BE(header.length + body.length);
  return Buffer.concat([size, header, body]);
}

/*
 * Fetch Request (Version: 4) => replica_id max_wait_ms min_bytes max_bytes isolation_level [topics]
 *   topics => topic [partitions]
 *     partitions => partition fetch_offset partition_max_bytes
 */
function fetchBody(topic: string, partition: number, offset: bigint, maxBytes: number, isolationLevel: 0 | 1): Buffer {
  const name = Buffer.from(topic);
  const b = Buffer.alloc(4 + 4 + 4 + 4 + 1 + 4 + 2 + name.length + 4 + 4 + 8 + 4);
  let p = 0;
  p = b.writeInt32BE(-1, p);
  p = b.writeInt32BE(100, p);
  p = b.writeInt32BE(1, p);
  p = b.writeInt32BE(maxBytes, p);
  p = b.writeInt8(isolationLevel, p);
  p = b.writeInt32BE(1, p);
  p = b.writeInt16BE(name.length, p);
  p += name.copy(b, p);
  p = b.writeInt32BE(1, p);
  p = b.writeInt32BE(partition, p);
  p = b.writeBigInt64BE(offset, p);
  b.writeInt32BE(maxBytes, p);
  return b;
}

/*
 * Fetch Response (Version: 4) => throttle_time_ms [responses]
 *   responses => topic [partitions]
 *     partitions => partition_index error_code high_watermark last_stable_offset [aborted_transactions] records
 *       aborted_transactions => producer_id first_offset
 */
function parseFetch(frame: Buffer): RawPartition {
  let p = 4 + 4; // correlation id, throttle time
  if (frame.readInt32BE(p) !== 1) throw new Error('expected one topic');
  p += 4;
  p += 2 + frame.readInt16BE(p);
  if (frame.readInt32BE(p) !== 1) throw new Error('expected one partition');
  p += 4 + 4;
  const errorCode = frame.readInt16BE(p);
  p += 2;
  const highWatermark = frame.readBigInt64BE(p);
  const lastStableOffset = frame.readBigInt64BE(p + 8);
  p += 16;
  const count = frame.readInt32BE(p);
  p += 4;
  let abortedTransactions: RawPartition['abortedTransactions'] = null;
  if (count >= 0) {
    abortedTransactions = [];
    for (let i = 0; i < count; i++, p += 16) {
      abortedTransactions.push({ producerId: frame.readBigInt64BE(p), firstOffset: frame.readBigInt64BE(p + 8) });
    }
  }
  const length = frame.readInt32BE(p);
  p += 4;
  const records = length < 0 ? Buffer.alloc(0) : frame.subarray(p, p + length);
  return { errorCode, highWatermark, lastStableOffset, abortedTransactions, records };
}

/** Sends one Fetch v4 for `topic`/`partition` at `offset` and returns the partition's raw answer. */
export function fetchRaw(options: {
  topic: string;
  partition?: number;
  offset?: bigint;
  maxBytes?: number;
  isolationLevel?: 'read_uncommitted' | 'read_committed';
}): Promise<RawPartition> {
  const [host, port] = [BROKER.slice(0, BROKER.lastIndexOf(':')), Number(BROKER.slice(BROKER.lastIndexOf(':') + 1))];
  const body = fetchBody(
    options.topic,
    options.partition ?? 0,
    options.offset ?? 0n,
    options.maxBytes ?? 8 << 20,
    options.isolationLevel === 'read_committed' ? 1 : 0,
  );
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const chunks: Buffer[] = [];
    let received = 0;
    socket.setTimeout(10_000, () => socket.destroy(new Error('fetch timed out')));
    socket.on('connect', () => socket.write(request(7, body)));
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received < 4) return;
      const all = Buffer.concat(chunks);
      const size = all.readInt32BE(0);
      if (all.length < 4 + size) return;
      socket.end();
      try {
        resolve(parseFetch(all.subarray(4, 4 + size)));
      } catch (err) {
        reject(err);
      }
    });
    socket.on('error', reject);
  });
}
