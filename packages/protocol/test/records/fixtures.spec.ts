/**
 * Record bytes captured from the real broker (Kafka 4.4): batches that the broker itself compressed with Java's
 * codecs (a topic with `compression.type`), batches kcat (librdkafka 1.x) compressed, and an uncompressed batch
 * from kafkajs. The expectations are the values that were produced, written here by hand.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { CompressionType, decodeRecords, type KafkaRecord } from '../../src/records';

const fixtures = JSON.parse(readFileSync(path.join(__dirname, 'fixtures', 'broker-records.json'), 'utf8')) as Record<
  string,
  string
>;
const bytes = (name: string) => Buffer.from(fixtures[name], 'hex');
const T0 = 1_700_000_000_000;
const view = (r: KafkaRecord) => [
  r.offset,
  r.key?.toString() ?? null,
  r.value?.toString() ?? null,
  r.headers.map((h) => [h.key, h.value?.toString() ?? null]),
];

const PRODUCED = [
  [0, 'key-0', 'value-0 '.repeat(8), [['trace', 't-0']]],
  [1, null, 'value-1 '.repeat(8), []],
  [
    2,
    'key-2',
    null,
    [
      ['a', 'x'],
      ['b', 'y'],
    ],
  ],
  [3, 'key-3', 'value-3 '.repeat(8), []],
];

describe('bytes captured from the broker', () => {
  it.each([
    ['kafkajs-none', CompressionType.NONE],
    ['java-gzip', CompressionType.GZIP],
    ['java-snappy', CompressionType.SNAPPY],
    ['java-lz4', CompressionType.LZ4],
    ['java-zstd', CompressionType.ZSTD],
  ] as const)('%s: as the broker stored it (compressed by Java unless none)', (name, compression) => {
    const { batches, truncated, nextOffset } = decodeRecords(bytes(name));
    expect(truncated).toBe(false);
    expect(nextOffset).toBe(4);
    expect(batches).toHaveLength(1);
    expect(batches[0]).toMatchObject({
      magic: 2,
      compression,
      baseOffset: 0,
      lastOffsetDelta: 3,
      timestampType: 'CreateTime',
    });
    expect(batches[0].records.map(view)).toEqual(PRODUCED);
    expect(batches[0].records.map((r) => r.timestamp)).toEqual([T0, T0 + 1, T0 + 2, T0 + 3]);
  });

  it('snappy from Java uses the xerial framing', () => {
    expect(bytes('java-snappy').subarray(61, 69).toString('latin1')).toBe('\x82SNAPPY\x00');
    expect(bytes('kcat-snappy').subarray(61, 69).toString('latin1')).not.toBe('\x82SNAPPY\x00');
  });

  it.each([
    ['kcat-gzip', CompressionType.GZIP],
    ['kcat-snappy', CompressionType.SNAPPY],
    ['kcat-lz4', CompressionType.LZ4],
    ['kcat-zstd', CompressionType.ZSTD],
  ] as const)('%s: compressed by librdkafka', (name, compression) => {
    const { batches, truncated } = decodeRecords(bytes(name));
    expect(truncated).toBe(false);
    expect(new Set(batches.map((b) => b.compression))).toEqual(new Set([compression]));
    expect(batches.flatMap((b) => b.records).map(view)).toEqual(
      Array.from({ length: 20 }, (_, i) => [i, `k${i}`, `${'kcat value '.repeat(6)}${i}`, [['h', 'v']]]),
    );
  });

  it('every captured batch fails its CRC once a byte of it changes', () => {
    expect(Object.keys(fixtures)).toHaveLength(9);
    for (const name of Object.keys(fixtures)) {
      const corrupt = bytes(name);
      corrupt[corrupt.length - 1] ^= 0x01;
      expect(() => decodeRecords(corrupt)).toThrow(expect.objectContaining({ code: 'ERR_CRC_MISMATCH' }));
    }
  });
});
