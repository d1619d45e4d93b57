import fc from 'fast-check';
import { decodeRecords, encodeMessageSet, encodeRecordBatch, type RecordInput } from '../../src/records';

const bytes = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a));
const record = fc.record({
  key: fc.option(bytes, { nil: null }),
  value: fc.option(bytes, { nil: null }),
  headers: fc.array(
    fc.record({ key: fc.string({ unit: 'grapheme', maxLength: 40 }), value: fc.option(bytes, { nil: null }) }),
    { maxLength: 4 },
  ),
  timestampDelta: fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
});

const hex = (b: Buffer | null | undefined) => (b == null ? null : b.toString('hex'));

describe('properties', () => {
  it('RecordBatch v2: encode then decode gives back every field, for every codec', () => {
    fc.assert(
      fc.property(
        fc.array(record, { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 0, max: 2 ** 50 }),
        fc.integer({ min: 0, max: 2 ** 45 }),
        fc.constantFrom('CreateTime', 'LogAppendTime'),
        fc.integer({ min: -1, max: 2 ** 40 }),
        (records, compression, baseOffset, baseTimestamp, timestampType, producerId) => {
          const input: RecordInput[] = records.map((r) => ({ ...r, timestamp: baseTimestamp + r.timestampDelta }));
          const maxTimestamp = baseTimestamp + 17;
          const bytes = encodeRecordBatch({
            records: input,
            compression,
            baseOffset,
            baseTimestamp,
            maxTimestamp,
            timestampType,
            producerId,
          });
          const { batches, truncated, nextOffset } = decodeRecords(bytes);
          expect(truncated).toBe(false);
          expect(nextOffset).toBe(baseOffset + records.length);
          const [batch] = batches;
          expect(batch).toMatchObject({
            compression,
            baseOffset,
            baseTimestamp,
            maxTimestamp,
            timestampType,
            producerId,
          });
          expect(
            batch.records.map((r) => [
              r.offset,
              r.timestamp,
              hex(r.key),
              hex(r.value),
              r.headers.map((h) => [h.key, hex(h.value)]),
            ]),
          ).toEqual(
            input.map((r, i) => [
              baseOffset + i,
              timestampType === 'LogAppendTime' ? maxTimestamp : r.timestamp,
              hex(r.key as Buffer | null),
              hex(r.value as Buffer | null),
              (r.headers ?? []).map((h) => [h.key, hex(h.value as Buffer | null)]),
            ]),
          );
        },
      ),
      { numRuns: 150, seed: 42 },
    );
  });

  it('legacy message sets: encode then decode, magic 0 and 1, every codec allowed there', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            key: fc.option(bytes, { nil: null }),
            value: fc.option(bytes, { nil: null }),
            timestamp: fc.integer({ min: 0, max: 2 ** 45 }),
          }),
          { minLength: 1, maxLength: 10 },
        ),
        fc.constantFrom(0 as const, 1 as const),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 2 ** 50 }),
        (messages, magic, compression, baseOffset) => {
          const { batches } = decodeRecords(encodeMessageSet({ magic, compression, baseOffset, messages }));
          const records = batches.flatMap((b) => b.records);
          expect(records.map((r) => [r.offset, r.timestamp, hex(r.key), hex(r.value)])).toEqual(
            messages.map((m, i) => [baseOffset + i, magic === 1 ? m.timestamp : -1, hex(m.key), hex(m.value)]),
          );
        },
      ),
      { numRuns: 100, seed: 7 },
    );
  });
});
