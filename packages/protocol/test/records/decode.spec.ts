import {
  CodecRegistry,
  CompressionType,
  controlRecord,
  crc32c,
  decodeRecords,
  encodeMessageSet,
  encodeRecordBatch,
  type DecodeRecordsResult,
} from '../../src/records';

/** Rewrites a batch's CRC32C after a test changed its bytes. */
function fixCrc(batch: Buffer, at = 0): Buffer {
  const length = batch.readInt32BE(at + 8);
  batch.writeUInt32BE(crc32c(batch.subarray(at + 21, at + 12 + length)), at + 17);
  return batch;
}

const offsets = (result: DecodeRecordsResult): number[] =>
  result.batches.filter((b) => !b.isControl).flatMap((b) => b.records.map((r) => r.offset));

describe('truncation at the end of a fetch', () => {
  const parts = [
    encodeRecordBatch({ baseOffset: 0, records: [{ key: 'a', value: 'x'.repeat(50) }, { value: 'b' }] }),
    encodeMessageSet({
      magic: 1,
      compression: CompressionType.GZIP,
      baseOffset: 2,
      messages: [{ value: 'm1' }, { value: 'm2' }],
    }),
    encodeRecordBatch({
      baseOffset: 4,
      compression: CompressionType.LZ4,
      records: [{ value: 'c', headers: [{ key: 'h', value: null }] }],
    }),
    encodeMessageSet({ magic: 0, baseOffset: 5, messages: [{ value: 'legacy' }] }),
    encodeRecordBatch({ baseOffset: 6, compression: CompressionType.ZSTD, records: [{ value: 'd' }, { value: 'e' }] }),
  ];
  const buffer = Buffer.concat(parts);
  const ends = parts.reduce<number[]>((acc, p) => [...acc, (acc.at(-1) ?? 0) + p.length], []);
  const offsetsPerPart = [[0, 1], [2, 3], [4], [5], [6, 7]];

  it('every prefix decodes to the whole batches before the cut, with no error', () => {
    for (let cut = 0; cut <= buffer.length; cut++) {
      const result = decodeRecords(buffer.subarray(0, cut));
      const whole = ends.filter((end) => end <= cut).length;
      expect(result.bytesConsumed).toBe(whole === 0 ? 0 : ends[whole - 1]);
      expect(result.truncated).toBe(cut > result.bytesConsumed);
      expect(offsets(result)).toEqual(offsetsPerPart.slice(0, whole).flat());
      expect(result.nextOffset).toBe(whole === 0 ? undefined : offsetsPerPart[whole - 1].at(-1)! + 1);
      expect(result.sizeNeeded).toBe(whole === 0 && cut >= 12 && cut < ends[0] ? parts[0].length : undefined);
    }
  });

  it('an empty buffer or null records are neither truncated nor an error', () => {
    expect(decodeRecords(null)).toEqual(decodeRecords(Buffer.alloc(0)));
    expect(decodeRecords(Buffer.alloc(0))).toEqual({
      batches: [],
      bytesConsumed: 0,
      truncated: false,
      nextOffset: undefined,
      sizeNeeded: undefined,
      lastEpoch: -1,
    });
  });
});

describe('lastEpoch (for Fetch v12 lastFetchedEpoch)', () => {
  const batch = (baseOffset: number, partitionLeaderEpoch: number) =>
    encodeRecordBatch({ baseOffset, partitionLeaderEpoch, records: [{ value: 'v' }] });

  it('is the partition leader epoch of the last whole batch read, skipped batches included', () => {
    const buffer = Buffer.concat([batch(0, 3), batch(1, 4), batch(2, 7)]);
    expect(decodeRecords(buffer).lastEpoch).toBe(7);
    // Batches before fromOffset are skipped without decoding, but still count: they were read.
    expect(decodeRecords(buffer, { fromOffset: 3 }).lastEpoch).toBe(7);
    // A batch cut at the end was not read.
    expect(decodeRecords(buffer.subarray(0, buffer.length - 1)).lastEpoch).toBe(4);
  });

  it('is -1 for a legacy message set, which has no epoch', () => {
    expect(decodeRecords(encodeMessageSet({ magic: 1, messages: [{ value: 'v' }] })).lastEpoch).toBe(-1);
  });
});

describe('malformed input raises KafkaProtocolError with the offset', () => {
  const first = encodeRecordBatch({ baseOffset: 0, records: [{ key: 'k', value: 'v' }] });
  const second = () =>
    encodeRecordBatch({
      baseOffset: 1,
      records: [{ key: 'key', value: 'value', headers: [{ key: 'h', value: 'v' }] }],
    });
  const at = first.length;
  const expectError = (buffer: Buffer, code: string, offset: number, options = {}) =>
    expect(() => decodeRecords(buffer, options)).toThrow(
      expect.objectContaining({ name: 'KafkaProtocolError', code, offset }),
    );

  it('CRC mismatch, at the CRC field of the bad batch; ignored with verifyCrc off', () => {
    const bad = second();
    bad[bad.length - 3] ^= 0xff;
    expectError(Buffer.concat([first, bad]), 'ERR_CRC_MISMATCH', at + 17);
    expect(decodeRecords(Buffer.concat([first, bad]), { verifyCrc: false }).batches).toHaveLength(2);
  });

  it('unknown magic', () => {
    const bad = second();
    bad[16] = 3;
    expectError(Buffer.concat([first, bad]), 'ERR_UNKNOWN_MAGIC', at + 16);
  });

  it('unknown codec (compression id 5), at the records', () => {
    const bad = second();
    bad.writeInt16BE(5, 21);
    expectError(Buffer.concat([first, fixCrc(bad)]), 'ERR_UNKNOWN_CODEC', at + 61);
  });

  it('a codec missing from a custom registry is ERR_UNKNOWN_CODEC too', () => {
    const gz = encodeRecordBatch({ records: [{ value: 'v' }], compression: CompressionType.GZIP });
    expectError(gz, 'ERR_UNKNOWN_CODEC', 61, { codecs: new CodecRegistry({ builtIn: false }) });
  });

  it('corrupt compressed bytes are ERR_DECOMPRESSION', () => {
    const bad = encodeRecordBatch({ records: [{ value: 'v'.repeat(100) }], compression: CompressionType.GZIP });
    bad.fill(0x41, 70, 80);
    expectError(fixCrc(bad), 'ERR_DECOMPRESSION', 61);
  });

  it('a decompressed batch over maxDecompressedBytes is ERR_DECOMPRESSION', () => {
    const big = encodeRecordBatch({ records: [{ value: Buffer.alloc(100_000) }], compression: CompressionType.ZSTD });
    expectError(big, 'ERR_DECOMPRESSION', 61, { maxDecompressedBytes: 50_000 });
    expect(decodeRecords(big, { maxDecompressedBytes: 200_000 }).batches[0].records[0].value?.length).toBe(100_000);
  });

  it('negative batch length', () => {
    const bad = second();
    bad.writeInt32BE(-2, 8);
    expectError(Buffer.concat([first, bad]), 'ERR_INVALID_LENGTH', at + 8);
  });

  it('batch length below the header size', () => {
    const bad = second();
    bad.writeInt32BE(20, 8);
    expectError(Buffer.concat([first, bad]), 'ERR_INVALID_LENGTH', at + 8);
  });

  it('negative or oversized record count', () => {
    const negative = second();
    negative.writeInt32BE(-1, 57);
    expectError(Buffer.concat([first, fixCrc(negative)]), 'ERR_INVALID_COUNT', at + 57);
    const huge = second();
    huge.writeInt32BE(0x7fffffff, 57);
    expectError(Buffer.concat([first, fixCrc(huge)]), 'ERR_INVALID_COUNT', at + 57);
  });

  it('record key length past the record end, at the key', () => {
    const bad = second();
    // Record: length varint at 61, attributes 62, ts delta 63, offset delta 64, key length 65.
    bad[65] = 0x7e; // zigzag 63
    expectError(Buffer.concat([first, fixCrc(bad)]), 'ERR_BUFFER_UNDERFLOW', at + 66);
  });

  it('negative key length other than -1', () => {
    const bad = second();
    bad[65] = 0x03; // zigzag -2
    expectError(Buffer.concat([first, fixCrc(bad)]), 'ERR_INVALID_LENGTH', at + 66);
  });

  it('record length past the batch end', () => {
    const bad = second();
    bad[61] = 0x7e;
    expectError(Buffer.concat([first, fixCrc(bad)]), 'ERR_BUFFER_UNDERFLOW', at + 61);
  });

  it('negative header count', () => {
    const bad = second();
    const headerCountAt = 61 + 1 + 1 + 1 + 1 + 1 + 3 + 1 + 5;
    expect(bad[headerCountAt]).toBe(2); // one header
    bad[headerCountAt] = 0x01; // zigzag -1
    expectError(Buffer.concat([first, fixCrc(bad)]), 'ERR_INVALID_COUNT', at + headerCountAt + 1);
  });

  it('an overlong varint', () => {
    const bad = second();
    bad.fill(0xff, 63, 75);
    expectError(fixCrc(bad), 'ERR_INVALID_VARINT', 63);
  });

  it('a record count that leaves bytes over is ERR_MALFORMED', () => {
    const two = encodeRecordBatch({ records: [{ value: 'a' }, { value: 'b' }] });
    two.writeInt32BE(1, 57);
    expect(() => decodeRecords(fixCrc(two))).toThrow(expect.objectContaining({ code: 'ERR_MALFORMED' }));
  });

  it('legacy: message size below the minimum and value length past the end', () => {
    const small = encodeMessageSet({ magic: 0, messages: [{ value: 'v' }] });
    small.writeInt32BE(6, 8);
    expectError(small, 'ERR_INVALID_LENGTH', 8, { verifyCrc: false });
    const past = encodeMessageSet({ magic: 1, messages: [{ key: null, value: 'value' }] });
    past.writeInt32BE(1000, 12 + 4 + 1 + 1 + 8 + 4);
    expectError(past, 'ERR_BUFFER_UNDERFLOW', 12 + 4 + 1 + 1 + 8 + 4, { verifyCrc: false });
  });
});

describe('transactions under read_committed', () => {
  const T = 1_700_000_000_000;
  const txn = (baseOffset: number, producerId: number, values: string[]) =>
    encodeRecordBatch({
      baseOffset,
      producerId,
      producerEpoch: 0,
      isTransactional: true,
      records: values.map((value) => ({ value, timestamp: T })),
    });
  const marker = (baseOffset: number, producerId: number, type: 'ABORT' | 'COMMIT') =>
    encodeRecordBatch({
      baseOffset,
      producerId,
      producerEpoch: 0,
      isTransactional: true,
      isControl: true,
      records: [controlRecord({ type, timestamp: T })],
    });
  const log = Buffer.concat([
    txn(0, 1, ['p1-aborted-0', 'p1-aborted-1']),
    txn(2, 2, ['p2-committed']),
    marker(3, 1, 'ABORT'),
    marker(4, 2, 'COMMIT'),
    txn(5, 1, ['p1-committed-later']),
    encodeRecordBatch({ baseOffset: 6, records: [{ value: 'plain' }] }),
    marker(7, 1, 'COMMIT'),
  ]);
  const abortedTransactions = [{ producerId: 1n, firstOffset: 0n }];

  it('drops exactly the aborted records; the same producer id later commits again', () => {
    const result = decodeRecords(log, { isolationLevel: 'read_committed', abortedTransactions });
    expect(offsets(result)).toEqual([2, 5, 6]);
    expect(result.batches.filter((b) => b.isControl).map((b) => [b.baseOffset, b.controlType])).toEqual([
      [3, 'ABORT'],
      [4, 'COMMIT'],
      [7, 'COMMIT'],
    ]);
    expect(result.nextOffset).toBe(8);
  });

  it('read_uncommitted keeps everything, control batches still flagged and empty', () => {
    const result = decodeRecords(log, { abortedTransactions });
    expect(offsets(result)).toEqual([0, 1, 2, 5, 6]);
    expect(result.batches.filter((b) => b.isControl).every((b) => b.records.length === 0)).toBe(true);
  });

  it('an aborted transaction only counts from its first offset', () => {
    const result = decodeRecords(log, {
      isolationLevel: 'read_committed',
      abortedTransactions: [{ producerId: 1, firstOffset: 5 }],
    });
    expect(offsets(result)).toEqual([0, 1, 2, 6]);
  });
});

describe('options', () => {
  it('rejects a non-positive maxDecompressedBytes and a fractional fromOffset', () => {
    const bytes = encodeRecordBatch({ records: [{ value: 'v' }] });
    expect(() => decodeRecords(bytes, { maxDecompressedBytes: 0 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
    expect(() => decodeRecords(bytes, { fromOffset: 1.5 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
  });
});
