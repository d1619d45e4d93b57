import * as zlib from 'node:zlib';
import { CompressionType, decodeRecords, encodeMessageSet, encodeRecordBatch } from '../../src/records';
import { crc32Js } from '../../src/records/crc';
import { xxhash32 } from '../../src/records/codecs';
import { kafkajsMessageSet } from './kafkajs';

const T0 = 1_600_000_000_000;
const MESSAGES = [
  { key: 'a', value: 'first', timestamp: T0 },
  { key: null, value: 'second', timestamp: T0 + 1 },
  { key: Buffer.from([1, 2]), value: null, timestamp: T0 + 2 },
];

describe('legacy message sets: exact bytes', () => {
  // Without a compression argument kafkajs numbers the messages 0, 1, 2, as our default baseOffset 0 does.
  it('magic 0, uncompressed, against kafkajs', () => {
    const theirs = kafkajsMessageSet({ messageVersion: 0, entries: MESSAGES }).buffer;
    const ours = encodeMessageSet({ magic: 0, messages: MESSAGES });
    expect(ours.toString('hex')).toBe(theirs.toString('hex'));
  });

  it('magic 1, uncompressed, with timestamps, against kafkajs', () => {
    const theirs = kafkajsMessageSet({ messageVersion: 1, entries: MESSAGES }).buffer;
    const ours = encodeMessageSet({ magic: 1, messages: MESSAGES });
    expect(ours.toString('hex')).toBe(theirs.toString('hex'));
  });

  it('magic 1, gzip wrapper with relative inner offsets, against kafkajs Produce v2', () => {
    const inner = kafkajsMessageSet({ messageVersion: 1, compression: CompressionType.GZIP, entries: MESSAGES }).buffer;
    const wrapper = kafkajsMessageSet({
      messageVersion: 1,
      entries: [{ compression: CompressionType.GZIP, timestamp: T0, value: zlib.gzipSync(inner) }],
    }).buffer;
    const ours = encodeMessageSet({
      magic: 1,
      compression: CompressionType.GZIP,
      messages: MESSAGES,
      wrapperTimestamp: T0,
    });
    // kafkajs writes the producer's offset -1 in front of the wrapper; we write the last inner offset.
    expect(ours.subarray(8).toString('hex')).toBe(wrapper.subarray(8).toString('hex'));
    expect(ours.readBigInt64BE(0)).toBe(2n);
  });

  it('magic 0 message, hex written from the spec', () => {
    const ours = encodeMessageSet({ magic: 0, baseOffset: 7, messages: [{ key: null, value: 'hi' }] });
    const body = '00' + '00' + 'ffffffff' + '00000002' + '6869'; // magic, attributes, null key, value "hi"
    const crc = crc32Js(Buffer.from(body, 'hex')).toString(16).padStart(8, '0');
    expect(ours.toString('hex')).toBe('0000000000000007' + '00000010' + crc + body);
  });
});

describe('legacy message sets: decode', () => {
  it('magic 0 and 1 uncompressed: offsets, keys, values, timestamps', () => {
    const v0 = encodeMessageSet({ magic: 0, baseOffset: 10, messages: MESSAGES });
    const v1 = encodeMessageSet({ magic: 1, baseOffset: 13, messages: MESSAGES });
    const { batches, nextOffset, truncated } = decodeRecords(Buffer.concat([v0, v1]));
    expect(truncated).toBe(false);
    expect(nextOffset).toBe(16);
    const records = batches.flatMap((b) => b.records.map((r) => ({ b, r })));
    expect(records.map(({ r }) => r.offset)).toEqual([10, 11, 12, 13, 14, 15]);
    expect(records.map(({ b }) => b.magic)).toEqual([0, 0, 0, 1, 1, 1]);
    expect(records.map(({ r }) => r.timestamp)).toEqual([-1, -1, -1, T0, T0 + 1, T0 + 2]);
    expect(records.map(({ r }) => r.key?.toString('hex') ?? null)).toEqual(['61', null, '0102', '61', null, '0102']);
    expect(records.map(({ r }) => r.value?.toString() ?? null)).toEqual([
      'first',
      'second',
      null,
      'first',
      'second',
      null,
    ]);
  });

  it('magic 1 compressed wrapper: absolute = wrapper offset - last inner + inner', () => {
    const set = encodeMessageSet({ magic: 1, compression: CompressionType.GZIP, baseOffset: 998, messages: MESSAGES });
    expect(set.readBigInt64BE(0)).toBe(1000n);
    const [batch] = decodeRecords(set).batches;
    expect(batch).toMatchObject({
      magic: 1,
      compression: 1,
      baseOffset: 998,
      lastOffsetDelta: 2,
      timestampType: 'CreateTime',
    });
    expect(batch.records.map((r) => [r.offset, r.timestamp, r.value?.toString() ?? null])).toEqual([
      [998, T0, 'first'],
      [999, T0 + 1, 'second'],
      [1000, T0 + 2, null],
    ]);
  });

  it('magic 1 wrapper with LogAppendTime gives every inner message the wrapper timestamp', () => {
    const set = encodeMessageSet({
      magic: 1,
      compression: CompressionType.SNAPPY,
      timestampType: 'LogAppendTime',
      wrapperTimestamp: T0 + 50,
      messages: MESSAGES,
    });
    const [batch] = decodeRecords(set).batches;
    expect(batch.timestampType).toBe('LogAppendTime');
    expect(batch.records.map((r) => r.timestamp)).toEqual([T0 + 50, T0 + 50, T0 + 50]);
  });

  it('magic 0 compressed wrapper keeps absolute inner offsets; fromOffset applies inside it', () => {
    const set = encodeMessageSet({ magic: 0, compression: CompressionType.GZIP, baseOffset: 40, messages: MESSAGES });
    expect(decodeRecords(set).batches[0].records.map((r) => r.offset)).toEqual([40, 41, 42]);
    expect(decodeRecords(set, { fromOffset: 42 }).batches[0].records.map((r) => r.offset)).toEqual([42]);
  });

  it('magic 0 lz4 wrapper with the broken frame header checksum of old Kafka (KAFKA-1493)', () => {
    const set = encodeMessageSet({ magic: 0, compression: CompressionType.LZ4, messages: MESSAGES });
    const valueAt = 12 + 4 + 1 + 1 + 4 + 4; // log overhead, crc, magic, attributes, null key, value length
    const frame = set.subarray(valueAt);
    frame[6] = (xxhash32(frame.subarray(0, 6)) >>> 8) & 0xff;
    set.writeUInt32BE(crc32Js(set.subarray(16)), 12);
    expect(decodeRecords(set).batches[0].records.map((r) => r.value?.toString() ?? null)).toEqual([
      'first',
      'second',
      null,
    ]);
  });

  it('a mix of magic 0, magic 1 and RecordBatch v2 in one buffer, as after a message format upgrade', () => {
    const buffer = Buffer.concat([
      encodeMessageSet({ magic: 0, baseOffset: 0, messages: MESSAGES.slice(0, 1) }),
      encodeMessageSet({ magic: 1, compression: CompressionType.LZ4, baseOffset: 1, messages: MESSAGES.slice(0, 2) }),
      encodeRecordBatch({ baseOffset: 3, compression: CompressionType.ZSTD, records: [{ value: 'v2' }] }),
    ]);
    const { batches } = decodeRecords(buffer);
    expect(batches.map((b) => b.magic)).toEqual([0, 1, 2]);
    expect(batches.flatMap((b) => b.records.map((r) => r.offset))).toEqual([0, 1, 2, 3]);
  });

  it('a legacy CRC32 mismatch is ERR_CRC_MISMATCH at the CRC field, unless verifyCrc is off', () => {
    const set = Buffer.concat([
      encodeMessageSet({ magic: 1, messages: MESSAGES.slice(0, 1) }),
      encodeMessageSet({ magic: 1, baseOffset: 1, messages: MESSAGES.slice(0, 1) }),
    ]);
    const second = set.length / 2;
    set[set.length - 1] ^= 1;
    expect(() => decodeRecords(set)).toThrow(
      expect.objectContaining({ code: 'ERR_CRC_MISMATCH', offset: second + 12 }),
    );
    expect(decodeRecords(set, { verifyCrc: false }).batches[1].records[0].value?.toString()).toBe('firsu');
  });
});
