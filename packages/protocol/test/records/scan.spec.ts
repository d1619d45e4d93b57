import {
  CompressionType,
  controlRecord,
  decodeRecords,
  encodeMessageSet,
  encodeRecordBatch,
  scanRecords,
  type DecodeRecordsOptions,
} from '../../src/records';
import { KafkaProtocolError } from '../../src/errors';

// scanRecords is what a fetch engine trusts to move its position before the records are decoded: it must agree
// with decodeRecords on every position field, and must never report "nothing to deliver" when decoding would
// deliver a record (that record would be skipped).

const deliverable = (buffer: Buffer, options: DecodeRecordsOptions) =>
  decodeRecords(buffer, options)
    .batches.filter((b) => !b.isControl)
    .reduce((n, b) => n + b.records.length, 0);

function expectAgrees(buffer: Buffer, options: DecodeRecordsOptions = {}): void {
  const scan = scanRecords(buffer, options);
  const decoded = decodeRecords(buffer, options);
  expect({
    bytesConsumed: scan.bytesConsumed,
    truncated: scan.truncated,
    nextOffset: scan.nextOffset,
    sizeNeeded: scan.sizeNeeded,
    lastEpoch: scan.lastEpoch,
  }).toEqual({
    bytesConsumed: decoded.bytesConsumed,
    truncated: decoded.truncated,
    nextOffset: decoded.nextOffset,
    sizeNeeded: decoded.sizeNeeded,
    lastEpoch: decoded.lastEpoch,
  });
  const n = deliverable(buffer, options);
  expect(scan.records === 0).toBe(n === 0);
}

describe('scanRecords agrees with decodeRecords', () => {
  const parts = [
    encodeRecordBatch({
      baseOffset: 0,
      partitionLeaderEpoch: 3,
      records: [{ key: 'a', value: 'x'.repeat(50) }, { value: 'b' }],
    }),
    encodeMessageSet({
      magic: 1,
      compression: CompressionType.GZIP,
      baseOffset: 2,
      messages: [{ value: 'm1' }, { value: 'm2' }],
    }),
    encodeRecordBatch({
      baseOffset: 4,
      partitionLeaderEpoch: 4,
      compression: CompressionType.LZ4,
      records: [{ value: 'c' }, { value: 'd' }, { value: 'e' }],
    }),
    encodeMessageSet({ magic: 0, baseOffset: 7, messages: [{ value: 'legacy' }] }),
    encodeRecordBatch({
      baseOffset: 8,
      partitionLeaderEpoch: 5,
      compression: CompressionType.ZSTD,
      records: [{ value: 'f' }, { value: 'g' }],
    }),
  ];
  const buffer = Buffer.concat(parts);

  it('on every prefix and from every offset (positions, size needed, records to deliver)', () => {
    for (let cut = 0; cut <= buffer.length; cut++) {
      for (const fromOffset of [0, 3, 9]) expectAgrees(buffer.subarray(0, cut), { fromOffset });
    }
  });

  it('counts exactly the records decoding delivers, for record batches without compaction gaps', () => {
    const v2 = Buffer.concat([parts[0]!, parts[2]!, parts[4]!]);
    for (const fromOffset of [0, 1, 2, 4, 5, 6, 8, 9, 10]) {
      expect(scanRecords(v2, { fromOffset }).records).toBe(deliverable(v2, { fromOffset }));
    }
  });

  it('null and empty records', () => {
    expect(scanRecords(null)).toEqual({
      bytesConsumed: 0,
      truncated: false,
      nextOffset: undefined,
      sizeNeeded: undefined,
      lastEpoch: -1,
      records: 0,
    });
    expectAgrees(Buffer.alloc(0));
  });

  it('does not check CRCs or decode records: a corrupt record is left for decodeRecords to find', () => {
    const batch = encodeRecordBatch({ baseOffset: 10, records: [{ value: 'v1' }, { value: 'v2' }] });
    batch[batch.length - 3] ^= 0xff; // inside the last record, covered by the CRC
    expect(scanRecords(batch)).toMatchObject({ nextOffset: 12, records: 2, bytesConsumed: batch.length });
    expect(() => decodeRecords(batch)).toThrow(expect.objectContaining({ code: 'ERR_CRC_MISMATCH' }));
  });

  it('raises the framing errors decodeRecords raises, at the same byte offset', () => {
    const good = encodeRecordBatch({ baseOffset: 0, records: [{ value: 'v' }] });
    const negative = Buffer.from(good);
    negative.writeInt32BE(-1, 8);
    const magic = Buffer.from(good);
    magic[16] = 7;
    const short = Buffer.from(good.subarray(0, 12 + 20));
    short.writeInt32BE(20, 8);
    for (const bad of [negative, magic, short]) {
      let expected: KafkaProtocolError | undefined;
      try {
        decodeRecords(bad, { verifyCrc: false });
      } catch (err) {
        expected = err as KafkaProtocolError;
      }
      expect(expected).toBeInstanceOf(KafkaProtocolError);
      expect(() => scanRecords(bad)).toThrow(
        expect.objectContaining({ code: expected!.code, offset: expected!.offset }),
      );
    }
  });
});

describe('scanRecords under read_committed', () => {
  const txn = (baseOffset: number, producerId: number, values: string[]) =>
    encodeRecordBatch({
      baseOffset,
      producerId,
      producerEpoch: 0,
      isTransactional: true,
      records: values.map((value) => ({ value })),
    });
  const marker = (baseOffset: number, producerId: number, type: 'ABORT' | 'COMMIT') =>
    encodeRecordBatch({
      baseOffset,
      producerId,
      producerEpoch: 0,
      isTransactional: true,
      isControl: true,
      records: [controlRecord({ type })],
    });

  it('counts nothing for aborted transactions and control batches, as decodeRecords delivers nothing', () => {
    const abortedOnly = Buffer.concat([txn(0, 1, ['a', 'b']), marker(2, 1, 'ABORT'), marker(3, 2, 'COMMIT')]);
    const options: DecodeRecordsOptions = {
      isolationLevel: 'read_committed',
      abortedTransactions: [{ producerId: 1, firstOffset: 0 }],
    };
    expect(scanRecords(abortedOnly, options)).toMatchObject({ records: 0, nextOffset: 4 });
    expectAgrees(abortedOnly, options);
    // The same producer commits after its ABORT marker: the marker is followed, so this one counts.
    const later = Buffer.concat([abortedOnly, txn(4, 1, ['c']), marker(5, 1, 'COMMIT')]);
    expect(scanRecords(later, options)).toMatchObject({ records: 1, nextOffset: 6 });
    expectAgrees(later, options);
    // read_uncommitted delivers the aborted records.
    expectAgrees(later, {});
    expect(scanRecords(later).records).toBe(3);
  });
});

describe('scanRecords never reports 0 when a record would be delivered', () => {
  it('a batch whose first records were compacted away still counts', () => {
    // Offsets 0..9 announced by the header (lastOffsetDelta 9), only 8 and 9 left: a compacted batch.
    const batch = encodeRecordBatch({
      baseOffset: 0,
      records: [
        { value: 'kept-8', offsetDelta: 8 },
        { value: 'kept-9', offsetDelta: 9 },
      ],
    });
    for (const fromOffset of [0, 5, 8, 9]) {
      const scan = scanRecords(batch, { fromOffset });
      const n = deliverable(batch, { fromOffset });
      expect(n).toBeGreaterThan(0);
      expect(scan.records).toBeGreaterThan(0);
      expect(scan.nextOffset).toBe(10);
    }
    expect(scanRecords(batch, { fromOffset: 10 }).records).toBe(0);
  });
});
