/**
 * Decode benchmark: the same ~1 MiB Fetch response decoded by @kiel/protocol and by kafkajs, in one run.
 *
 *   npm run bench -w @kiel/protocol          (builds with tsc, then runs this on plain node)
 *
 * Ours decodes the partition's records bytes with CRC32C checking on. The peer is kafkajs 2.2.4's Fetch v11
 * response decoder (decode + parse, which holds its RecordBatch decoder), on a Fetch v11 response built around
 * the very same records bytes; kafkajs checks no CRC. Each figure is the median of several timed runs after a
 * warm-up, ours and the peer alternating so that machine noise hits both. Rates are given by the wall clock and
 * per CPU second of the process (which other processes on a shared machine disturb much less).
 */
/* eslint-disable @typescript-eslint/no-require-imports */
import { CompressionType, decodeRecords, encodeRecordBatch, lz4Codec, type RecordInput } from '../src/records';

const lz4 = require('lz4-napi') as { decompressFrameSync(data: Buffer): Buffer };
const kafkajs = require('kafkajs') as {
  CompressionTypes: Record<string, number>;
  CompressionCodecs: Record<number, () => unknown>;
};
/**
 * kafkajs has no lz4 of its own. By default it gets lz4-napi's frame decoder, the obvious codec a kafkajs user
 * would plug in; with `sameCodec` it gets our lz4 codec, so that only the decoders differ.
 */
function giveKafkajsLz4(sameCodec: boolean): void {
  kafkajs.CompressionCodecs[kafkajs.CompressionTypes.LZ4] = () => ({
    compress: async () => {
      throw new Error('not used');
    },
    decompress: async (buffer: Buffer) =>
      sameCodec ? lz4Codec.decompress(buffer, { maxOutputBytes: 1 << 30 }) : lz4.decompressFrameSync(buffer),
  });
}
const kafkajsFetchV11 = require('kafkajs/src/protocol/requests/fetch/v11/response') as {
  decode(data: Buffer): Promise<unknown>;
  parse(data: unknown): Promise<{ responses: Array<{ partitions: Array<{ messages: unknown[] }> }> }>;
};

const TARGET_BYTES = 1 << 20;
const BATCH_BYTES = 16 * 1024; // the Java producer's default batch.size
const RUNS = Number(process.env.BENCH_RUNS ?? 9);
const RUN_MS = Number(process.env.BENCH_RUN_MS ?? 300);

/** Pseudo-random printable bytes: realistic payloads that still compress somewhat. */
function payload(seed: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = 0x61 + ((x >>> 16) % 16);
  }
  return out;
}

/** ~1 MiB of record batches of `recordSize`-byte values, 16 KiB each before compression. */
function buildRecords(recordSize: number, compression: number): { bytes: Buffer; count: number } {
  const perBatch = Math.max(1, Math.floor(BATCH_BYTES / (recordSize + 20)));
  const batches: Buffer[] = [];
  let size = 0;
  let offset = 0;
  const t0 = 1_700_000_000_000;
  while (size < TARGET_BYTES) {
    const records: RecordInput[] = [];
    for (let i = 0; i < perBatch; i++) {
      records.push({ key: `key-${offset + i}`, value: payload(offset + i, recordSize), timestamp: t0 + offset + i });
    }
    const batch = encodeRecordBatch({
      baseOffset: offset,
      compression,
      records,
      producerId: 1,
      producerEpoch: 0,
      baseSequence: offset,
    });
    if (size + batch.length > TARGET_BYTES && batches.length > 0) break;
    batches.push(batch);
    size += batch.length;
    offset += perBatch;
  }
  return { bytes: Buffer.concat(batches), count: offset };
}

/*
 * Fetch Response (Version: 11) => throttle_time_ms error_code session_id [responses]
 *   responses => topic [partitions]
 *     partitions => partition_index error_code high_watermark last_stable_offset log_start_offset
 *                   [aborted_transactions] preferred_read_replica records
 */
function fetchV11Response(records: Buffer, highWatermark: number): Buffer {
  const topic = Buffer.from('bench');
  const head = Buffer.alloc(4 + 2 + 4 + 4 + 2 + topic.length + 4 + 4 + 2 + 8 + 8 + 8 + 4 + 4 + 4);
  let p = 0;
  p = head.writeInt32BE(0, p);
  p = head.writeInt16BE(0, p);
  p = head.writeInt32BE(0, p);
  p = head.writeInt32BE(1, p);
  p = head.writeInt16BE(topic.length, p);
  p += topic.copy(head, p);
  p = head.writeInt32BE(1, p);
  p = head.writeInt32BE(0, p);
  p = head.writeInt16BE(0, p);
  p = head.writeBigInt64BE(BigInt(highWatermark), p);
  p = head.writeBigInt64BE(BigInt(highWatermark), p);
  p = head.writeBigInt64BE(0n, p);
  p = head.writeInt32BE(0, p); // no aborted transactions
  p = head.writeInt32BE(-1, p);
  head.writeInt32BE(records.length, p);
  return Buffer.concat([head, records]);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Records per second of `fn` over one timed run of about RUN_MS: by the wall clock and per CPU second. */
async function timeRun(fn: () => number | Promise<number>): Promise<{ wall: number; cpu: number }> {
  let records = 0;
  const start = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  let elapsed = 0;
  do {
    records += await fn();
    elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  } while (elapsed < RUN_MS);
  const cpu = process.cpuUsage(cpuStart);
  return { wall: (records / elapsed) * 1000, cpu: (records / (cpu.user + cpu.system)) * 1e6 };
}

async function scenario(name: string, recordSize: number, compression: number): Promise<void> {
  const { bytes, count } = buildRecords(recordSize, compression);
  const response = fetchV11Response(bytes, count);

  const ours = (): number => {
    const { batches } = decodeRecords(bytes, { verifyCrc: true });
    let n = 0;
    for (const batch of batches) n += batch.records.length;
    return n;
  };
  const theirs = async (): Promise<number> => {
    const parsed = await kafkajsFetchV11.parse(await kafkajsFetchV11.decode(response));
    return parsed.responses[0].partitions[0].messages.length;
  };
  if (ours() !== count || (await theirs()) !== count) {
    throw new Error(`${name}: the decoders disagree on the record count`);
  }

  for (let i = 0; i < 2; i++) {
    await timeRun(ours);
    await timeRun(theirs);
  }
  const runs: Array<{ ours: { wall: number; cpu: number }; theirs: { wall: number; cpu: number } }> = [];
  for (let i = 0; i < RUNS; i++) runs.push({ ours: await timeRun(ours), theirs: await timeRun(theirs) });
  const mbps = (rate: number) => ((rate / count) * bytes.length) / (1 << 20);
  const line = (clock: 'wall' | 'cpu') => {
    const o = median(runs.map((r) => r.ours[clock]));
    const t = median(runs.map((r) => r.theirs[clock]));
    // The ratio is the median of the per-pair ratios: a pair runs back to back, so load drift cancels out.
    const ratio = median(runs.map((r) => r.ours[clock] / r.theirs[clock]));
    return [
      `  ${clock.padEnd(5)}`,
      `ours ${(o / 1e6).toFixed(2)} M rec/s ${mbps(o).toFixed(0).padStart(5)} MB/s`.padEnd(34),
      `kafkajs ${(t / 1e6).toFixed(3)} M rec/s ${mbps(t).toFixed(0).padStart(4)} MB/s`.padEnd(36),
      `ratio ${ratio.toFixed(1)}x`,
    ].join(' ');
  };
  console.log(`${name}: ${(bytes.length / (1 << 20)).toFixed(2)} MiB, ${count} records`);
  console.log(line('wall'));
  console.log(line('cpu'));
}

async function main(): Promise<void> {
  console.log(
    `node ${process.version}; median of ${RUNS} runs of ${RUN_MS} ms after warm-up; CRC32C check on for ours`,
  );
  console.log('MB/s counts the bytes of the records as fetched (compressed for lz4).');
  console.log("wall: by the wall clock; cpu: per second of this process's CPU time, steadier on a shared machine.");
  await scenario('100-byte records, uncompressed', 100, CompressionType.NONE);
  giveKafkajsLz4(false);
  await scenario('100-byte records, lz4', 100, CompressionType.LZ4);
  giveKafkajsLz4(true);
  await scenario('  same, kafkajs with our lz4', 100, CompressionType.LZ4);
  await scenario('1 KiB records, uncompressed', 1024, CompressionType.NONE);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
