/**
 * Against the real broker: batches produced by kafkajs and by kcat (librdkafka) under every codec, fetched raw
 * with Fetch v4 and decoded with ours. Every key, value, header and offset is checked.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { CompressionCodecs, CompressionTypes, Kafka, logLevel, type Admin, type Producer } from 'kafkajs';
import {
  CompressionType,
  decodeRecords,
  lz4Codec,
  snappyCodec,
  zstdCodec,
  type CompressionCodec,
  type KafkaRecord,
} from '../../src/records';
import { BROKER, KCAT, fetchRaw } from './broker';

// kafkajs takes custom codecs per compression type: produce snappy, lz4 and zstd through ours.
const asKafkajsCodec = (codec: CompressionCodec) => () => ({
  compress: async (encoder: { buffer: Buffer }) => codec.compress(encoder.buffer),
  decompress: async (buffer: Buffer) => codec.decompress(buffer, { maxOutputBytes: 1 << 28 }),
});
CompressionCodecs[CompressionTypes.Snappy] = asKafkajsCodec(snappyCodec);
CompressionCodecs[CompressionTypes.LZ4] = asKafkajsCodec(lz4Codec);
CompressionCodecs[CompressionTypes.ZSTD] = asKafkajsCodec(zstdCodec);

const run = randomBytes(4).toString('hex');
const kafka = new Kafka({ clientId: 'kiel-protocol-records-test', brokers: [BROKER], logLevel: logLevel.NOTHING });
let admin: Admin;
const topics: string[] = [];
const producers: Producer[] = [];

async function newTopic(name: string, configEntries: Array<{ name: string; value: string }> = []): Promise<string> {
  const topic = `kiel-records-${name}-${run}`;
  await admin.createTopics({ topics: [{ topic, numPartitions: 1, configEntries }], waitForLeaders: true });
  topics.push(topic);
  return topic;
}

/** Fetches the whole partition (it is small) and decodes it. */
async function fetchAll(topic: string, options: { isolationLevel?: 'read_uncommitted' | 'read_committed' } = {}) {
  const raw = await fetchRaw({ topic, isolationLevel: options.isolationLevel });
  expect(raw.errorCode).toBe(0);
  const decoded = decodeRecords(raw.records, {
    isolationLevel: options.isolationLevel,
    abortedTransactions: raw.abortedTransactions,
  });
  expect(decoded.truncated).toBe(false);
  return { raw, decoded, records: decoded.batches.filter((b) => !b.isControl).flatMap((b) => b.records) };
}

const view = (r: KafkaRecord) => ({
  offset: r.offset,
  key: r.key?.toString() ?? null,
  value: r.value?.toString() ?? null,
  headers: r.headers.map((h) => [h.key, h.value?.toString() ?? null]),
});

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
});

afterAll(async () => {
  await Promise.all(producers.map((p) => p.disconnect()));
  if (topics.length > 0) await admin.deleteTopics({ topics });
  await admin.disconnect();
});

const T0 = Date.now() - 60_000;
const MESSAGES = Array.from({ length: 60 }, (_, i) => ({
  key: i % 7 === 0 ? null : `key-${i}`,
  value: i % 11 === 0 ? null : `value-${i}-`.repeat(1 + (i % 5)),
  timestamp: String(T0 + i),
  headers: i % 3 === 0 ? {} : { trace: `t-${i}`, 'ü-unicode': 'é' },
}));

describe('kafkajs-produced batches', () => {
  it.each([
    ['none', CompressionTypes.None, CompressionType.NONE],
    ['gzip', CompressionTypes.GZIP, CompressionType.GZIP],
    ['snappy', CompressionTypes.Snappy, CompressionType.SNAPPY],
    ['lz4', CompressionTypes.LZ4, CompressionType.LZ4],
    ['zstd', CompressionTypes.ZSTD, CompressionType.ZSTD],
  ])('%s: every key, value, header, timestamp and offset', async (name, kafkajsCompression, ours) => {
    const topic = await newTopic(`kafkajs-${name}`);
    const producer = kafka.producer();
    producers.push(producer);
    await producer.connect();
    // Three sends, three batches.
    for (const part of [MESSAGES.slice(0, 20), MESSAGES.slice(20, 45), MESSAGES.slice(45)]) {
      await producer.send({ topic, compression: kafkajsCompression, messages: part });
    }
    const { decoded, records } = await fetchAll(topic);
    expect(decoded.batches).toHaveLength(3);
    expect(decoded.batches.every((b) => b.compression === ours && b.magic === 2)).toBe(true);
    expect(decoded.nextOffset).toBe(MESSAGES.length);
    expect(records.map(view)).toEqual(
      MESSAGES.map((m, i) => ({ offset: i, key: m.key, value: m.value, headers: Object.entries(m.headers) })),
    );
    expect(records.map((r) => r.timestamp)).toEqual(MESSAGES.map((m) => Number(m.timestamp)));
  });
});

describe('kcat-produced batches (librdkafka)', () => {
  const LINES = Array.from({ length: 300 }, (_, i) => `key-${i}:${`kcat value ${i % 10} `.repeat(8)}`);

  it.each(['none', 'gzip', 'snappy', 'lz4', 'zstd'])('%s: every key, value, header and offset', async (codec) => {
    const topic = await newTopic(`kcat-${codec}`);
    const result = spawnSync(
      KCAT,
      ['-P', '-b', BROKER, '-t', topic, '-z', codec, '-K:', '-H', 'k=v', '-H', 'trace=abc', '-X', 'linger.ms=50'],
      { input: LINES.join('\n') + '\n', encoding: 'utf8', timeout: 30_000 },
    );
    expect(result.status).toBe(0);
    const { raw, decoded, records } = await fetchAll(topic);
    const compressions = new Set(decoded.batches.map((b) => b.compression));
    expect([...compressions]).toEqual([CompressionType[codec.toUpperCase() as keyof typeof CompressionType]]);
    if (codec === 'snappy') {
      // librdkafka writes a bare raw snappy block, not the xerial framing of the Java producer.
      expect(raw.records.subarray(61, 69).toString('latin1')).not.toBe('\x82SNAPPY\x00');
    }
    expect(records.map(view)).toEqual(
      LINES.map((line, i) => ({
        offset: i,
        key: line.slice(0, line.indexOf(':')),
        value: line.slice(line.indexOf(':') + 1),
        headers: [
          ['k', 'v'],
          ['trace', 'abc'],
        ],
      })),
    );
  });
});

describe('batches compressed by the Java broker (topic compression.type)', () => {
  // The broker recompresses with Java's own codecs: snappy-java's xerial framing, KafkaLZ4BlockOutputStream, zstd-jni.
  it.each(['gzip', 'snappy', 'lz4', 'zstd'])('%s', async (codec) => {
    const topic = await newTopic(`java-${codec}`, [{ name: 'compression.type', value: codec }]);
    const producer = kafka.producer();
    producers.push(producer);
    await producer.connect();
    await producer.send({ topic, messages: MESSAGES });
    const { raw, decoded, records } = await fetchAll(topic);
    expect(decoded.batches.map((b) => b.compression)).toEqual([
      CompressionType[codec.toUpperCase() as keyof typeof CompressionType],
    ]);
    if (codec === 'snappy') expect(raw.records.subarray(61, 69).toString('latin1')).toBe('\x82SNAPPY\x00');
    expect(records.map(view)).toEqual(
      MESSAGES.map((m, i) => ({ offset: i, key: m.key, value: m.value, headers: Object.entries(m.headers) })),
    );
  });
});

describe('transactions', () => {
  it('read_committed drops exactly the aborted records and the control batches', async () => {
    const topic = await newTopic('txn');
    const producer = kafka.producer({
      transactionalId: `kiel-records-txn-${run}`,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    producers.push(producer);
    await producer.connect();
    const send = async (values: string[], end: 'commit' | 'abort') => {
      const txn = await producer.transaction();
      await txn.send({ topic, messages: values.map((value) => ({ key: 'k', value })) });
      await (end === 'commit' ? txn.commit() : txn.abort());
    };
    await send(['c1', 'c2'], 'commit');
    await send(['a1', 'a2', 'a3'], 'abort');
    await send(['c3'], 'commit');
    await send(['a4'], 'abort');
    // The coordinator writes the markers after EndTxn returns: wait until the last one is stable.
    // Offsets: c1 c2 COMMIT a1 a2 a3 ABORT c3 COMMIT a4 ABORT.
    const deadline = Date.now() + 15_000;
    while ((await fetchRaw({ topic, isolationLevel: 'read_committed' })).lastStableOffset < 11n) {
      if (Date.now() > deadline) throw new Error('the transaction markers did not become stable in 15 s');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }

    const committed = await fetchAll(topic, { isolationLevel: 'read_committed' });
    expect(committed.raw.abortedTransactions?.length).toBe(2);
    expect(committed.records.map((r) => r.value?.toString())).toEqual(['c1', 'c2', 'c3']);
    const markers = committed.decoded.batches.filter((b) => b.isControl);
    expect(markers.map((b) => b.controlType)).toEqual(['COMMIT', 'ABORT', 'COMMIT', 'ABORT']);
    expect(markers.every((b) => b.records.length === 0 && b.isTransactional)).toBe(true);
    expect(committed.records.map((r) => r.offset)).toEqual([0, 1, 7]);
    expect(committed.decoded.nextOffset).toBe(11);

    const uncommitted = await fetchAll(topic);
    expect(uncommitted.records.map((r) => r.value?.toString())).toEqual(['c1', 'c2', 'a1', 'a2', 'a3', 'c3', 'a4']);
  });
});

describe('a fetch cut at maxBytes', () => {
  it('decodes the whole batches and reports the truncated one', async () => {
    const topic = await newTopic('truncated');
    const producer = kafka.producer();
    producers.push(producer);
    await producer.connect();
    for (let i = 0; i < 3; i++) {
      await producer.send({
        topic,
        messages: Array.from({ length: 10 }, (_, j) => ({ value: `batch-${i}-${j}-`.repeat(20) })),
      });
    }
    const whole = await fetchRaw({ topic });
    const first = decodeRecords(whole.records).bytesConsumed;
    const firstBatchSize = 12 + whole.records.readInt32BE(8);
    const cut = await fetchRaw({ topic, maxBytes: firstBatchSize + 100 });
    const decoded = decodeRecords(cut.records);
    expect(first).toBe(whole.records.length);
    expect(cut.records.length).toBeGreaterThan(firstBatchSize);
    expect(decoded.truncated).toBe(true);
    expect(decoded.bytesConsumed).toBe(firstBatchSize);
    expect(decoded.batches.flatMap((b) => b.records.map((r) => r.offset))).toEqual(
      Array.from({ length: 10 }, (_, j) => j),
    );
    expect(decoded.nextOffset).toBe(10);
  });
});
