import { CompressionType, controlRecord, decodeRecords, encodeRecordBatch, type RecordInput } from '../../src/records';
import { crc32cJs } from '../../src/records/crc';
import { kafkajsLong, kafkajsRecord, kafkajsRecordBatch } from './kafkajs';

const T0 = 1_700_000_000_000;

/** The same batch through kafkajs's encoder, which always writes CreateTime and never sets the control bit. */
async function viaKafkajs(
  records: RecordInput[],
  batch: {
    baseOffset?: number;
    compression?: number;
    producerId?: number;
    producerEpoch?: number;
    baseSequence?: number;
    isTransactional?: boolean;
    partitionLeaderEpoch?: number;
  },
): Promise<Buffer> {
  const base = records[0]?.timestamp ?? T0;
  const encoded = await kafkajsRecordBatch({
    compression: batch.compression ?? 0,
    firstOffset: kafkajsLong.fromValue(batch.baseOffset ?? 0),
    firstTimestamp: base,
    maxTimestamp: Math.max(...records.map((r) => r.timestamp ?? base)),
    partitionLeaderEpoch: batch.partitionLeaderEpoch ?? -1,
    lastOffsetDelta: records.length - 1,
    transactional: batch.isTransactional ?? false,
    producerId: kafkajsLong.fromValue(batch.producerId ?? -1),
    producerEpoch: batch.producerEpoch ?? -1,
    firstSequence: batch.baseSequence ?? -1,
    records: records.map((r, i) =>
      kafkajsRecord({
        offsetDelta: i,
        timestampDelta: (r.timestamp ?? base) - base,
        key: (r.key ?? null) as Buffer | string | null,
        value: r.value,
        headers: Object.fromEntries((r.headers ?? []).map((h) => [h.key, h.value as Buffer | string])),
      }),
    ),
  });
  return encoded.buffer;
}

const RECORDS: RecordInput[] = [
  { key: 'key-0', value: 'value-0', timestamp: T0 },
  { key: null, value: Buffer.from([0, 1, 2, 255]), timestamp: T0 + 5, headers: [{ key: 'h1', value: 'v1' }] },
  {
    key: Buffer.alloc(0),
    value: null,
    timestamp: T0 + 300_000,
    headers: [
      { key: 'ü-key', value: 'é' },
      { key: 'b', value: Buffer.alloc(200, 7) },
    ],
  },
  { key: 'k'.repeat(300), value: 'x'.repeat(70_000), timestamp: T0 - 2 },
];

describe('RecordBatch v2 encode: exact bytes against kafkajs', () => {
  it('uncompressed, with headers, null keys and values, negative and large timestamp deltas', async () => {
    const ours = encodeRecordBatch({ records: RECORDS, baseOffset: 0 });
    expect(ours.toString('hex')).toBe((await viaKafkajs(RECORDS, {})).toString('hex'));
  });

  it('gzip (kafkajs compresses with node:zlib defaults as we do)', async () => {
    const ours = encodeRecordBatch({ records: RECORDS, compression: CompressionType.GZIP });
    expect(ours.equals(await viaKafkajs(RECORDS, { compression: CompressionType.GZIP }))).toBe(true);
  });

  it('idempotent and transactional fields, base offset, partition leader epoch', async () => {
    const fields = {
      baseOffset: 1234567890123,
      producerId: 987654321,
      producerEpoch: 7,
      baseSequence: 42,
      isTransactional: true,
      partitionLeaderEpoch: 3,
    };
    const ours = encodeRecordBatch({ records: RECORDS.slice(0, 2), ...fields });
    expect(ours.toString('hex')).toBe((await viaKafkajs(RECORDS.slice(0, 2), fields)).toString('hex'));
  });

  it('one small record, byte for byte as the spec lays it out', () => {
    const ours = encodeRecordBatch({ records: [{ key: 'k', value: 'v', timestamp: 0x0102030405 }], baseOffset: 5 });
    // prettier-ignore
    const hex = [
      '0000000000000005', // baseOffset
      '0000003a',         // batchLength = 49 + 9
      'ffffffff',         // partitionLeaderEpoch
      '02',               // magic
      ours.subarray(17, 21).toString('hex'), // crc (checked below)
      '0000',             // attributes
      '00000000',         // lastOffsetDelta
      '0000000102030405', '0000000102030405', // base and max timestamp
      'ffffffffffffffff', 'ffff', 'ffffffff', // producer id, epoch, base sequence
      '00000001',         // record count
      '10', '00', '00', '00', '02', '6b', '02', '76', '00', // length 8, attrs, ts delta, offset delta, key, value, 0 headers
    ].join('');
    expect(ours.toString('hex')).toBe(hex);
    // The CRC32C covers attributes to the end, computed here by the independent JS implementation.
    expect(ours.readUInt32BE(17)).toBe(crc32cJs(Buffer.from(hex, 'hex').subarray(21)));
  });
});

describe('control batches', () => {
  it('encode as the spec says: attributes 0x30, key version 0 type, value version 0 coordinator epoch', () => {
    const batch = encodeRecordBatch({
      baseOffset: 10,
      producerId: 1000,
      producerEpoch: 2,
      isTransactional: true,
      isControl: true,
      records: [controlRecord({ type: 'COMMIT', coordinatorEpoch: 9, timestamp: 0 })],
    });
    // prettier-ignore
    const expected = [
      '000000000000000a', '00000042', 'ffffffff', '02', batch.subarray(17, 21).toString('hex'),
      '0030', '00000000', '0000000000000000', '0000000000000000', '00000000000003e8', '0002', 'ffffffff', '00000001',
      // record: length 16 (zigzag 0x20), attributes, ts delta, offset delta, key (4 bytes), value (6 bytes), 0 headers
      '20', '00', '00', '00', '08', '00000001', '0c', '000000000009', '00',
    ].join('');
    expect(batch.toString('hex')).toBe(expected);
    expect(batch.readUInt32BE(17)).toBe(crc32cJs(Buffer.from(expected, 'hex').subarray(21)));
    const decoded = decodeRecords(batch).batches[0];
    expect(decoded).toMatchObject({ isControl: true, isTransactional: true, controlType: 'COMMIT', records: [] });
  });
});

describe('RecordBatch v2 decode', () => {
  it('reads every field kafkajs wrote', async () => {
    const fields = {
      baseOffset: 77,
      producerId: 5,
      producerEpoch: 1,
      baseSequence: 9,
      isTransactional: false,
      partitionLeaderEpoch: 12,
    };
    const { batches, bytesConsumed, truncated, nextOffset } = decodeRecords(await viaKafkajs(RECORDS, fields));
    expect(truncated).toBe(false);
    expect(nextOffset).toBe(77 + RECORDS.length);
    expect(bytesConsumed).toBeGreaterThan(70_000);
    expect(batches).toHaveLength(1);
    const [batch] = batches;
    expect(batch).toMatchObject({
      magic: 2,
      baseOffset: 77,
      lastOffsetDelta: 3,
      partitionLeaderEpoch: 12,
      compression: 0,
      timestampType: 'CreateTime',
      baseTimestamp: T0,
      maxTimestamp: T0 + 300_000,
      producerId: 5,
      producerEpoch: 1,
      baseSequence: 9,
      isTransactional: false,
      isControl: false,
      controlType: undefined,
    });
    expect(batch.records.map((r) => r.offset)).toEqual([77, 78, 79, 80]);
    expect(batch.records.map((r) => r.timestamp)).toEqual([T0, T0 + 5, T0 + 300_000, T0 - 2]);
    expect(batch.records[0].key?.toString()).toBe('key-0');
    expect(batch.records[1].key).toBeNull();
    expect(batch.records[1].value).toEqual(Buffer.from([0, 1, 2, 255]));
    expect(batch.records[1].headers).toEqual([{ key: 'h1', value: Buffer.from('v1') }]);
    expect(batch.records[2].key).toEqual(Buffer.alloc(0));
    expect(batch.records[2].value).toBeNull();
    expect(batch.records[2].headers).toEqual([
      { key: 'ü-key', value: Buffer.from('é') },
      { key: 'b', value: Buffer.alloc(200, 7) },
    ]);
    expect(batch.records[3].value?.length).toBe(70_000);
    expect(batch.records[0].headers).toEqual([]);
  });

  it('keys and values are views into the input, not copies', () => {
    const bytes = encodeRecordBatch({ records: [{ key: 'abc', value: 'def' }] });
    const record = decodeRecords(bytes).batches[0].records[0];
    expect(record.value?.buffer).toBe(bytes.buffer);
    bytes[bytes.length - 2] = 0x5a; // last byte of the value ("f"), before the header count
    expect(record.value?.toString()).toBe('deZ');
  });

  it('LogAppendTime: every record takes the batch max timestamp', () => {
    const bytes = encodeRecordBatch({
      timestampType: 'LogAppendTime',
      baseTimestamp: T0,
      maxTimestamp: T0 + 999,
      records: [
        { value: 'a', timestamp: T0 },
        { value: 'b', timestamp: T0 + 1 },
      ],
    });
    const [batch] = decodeRecords(bytes).batches;
    expect(batch.timestampType).toBe('LogAppendTime');
    expect(batch.records.map((r) => r.timestamp)).toEqual([T0 + 999, T0 + 999]);
  });

  it.each([
    ['gzip', CompressionType.GZIP],
    ['snappy', CompressionType.SNAPPY],
    ['lz4', CompressionType.LZ4],
    ['zstd', CompressionType.ZSTD],
  ])('%s batches decode to the same records', (_name, compression) => {
    const bytes = encodeRecordBatch({ records: RECORDS, compression, baseOffset: 100 });
    const [batch] = decodeRecords(bytes).batches;
    expect(batch.compression).toBe(compression);
    expect(
      batch.records.map((r) => [r.offset, r.key?.toString('hex') ?? null, r.value?.toString('hex') ?? null]),
    ).toEqual(
      RECORDS.map((r, i) => [
        100 + i,
        r.key == null ? null : Buffer.from(r.key).toString('hex'),
        r.value == null ? null : Buffer.from(r.value).toString('hex'),
      ]),
    );
  });

  it('fromOffset drops records before it inside a batch, and skips whole batches before it', () => {
    const a = encodeRecordBatch({
      baseOffset: 0,
      compression: CompressionType.GZIP,
      records: [{ value: '0' }, { value: '1' }, { value: '2' }],
    });
    const b = encodeRecordBatch({
      baseOffset: 3,
      compression: CompressionType.GZIP,
      records: [{ value: '3' }, { value: '4' }],
    });
    const result = decodeRecords(Buffer.concat([a, b]), { fromOffset: 4 });
    expect(result.batches.flatMap((x) => x.records.map((r) => r.offset))).toEqual([4]);
    expect(result.nextOffset).toBe(5);
    expect(
      decodeRecords(Buffer.concat([a, b]), { fromOffset: 2 }).batches.flatMap((x) => x.records.map((r) => r.offset)),
    ).toEqual([2, 3, 4]);
  });

  it('offsets beyond 2^53 raise ERR_OUT_OF_RANGE', () => {
    const bytes = encodeRecordBatch({ records: [{ value: 'a' }] });
    bytes.writeBigInt64BE(2n ** 53n, 0);
    expect(() => decodeRecords(bytes, { verifyCrc: false })).toThrow(
      expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', offset: 0 }),
    );
  });
});
