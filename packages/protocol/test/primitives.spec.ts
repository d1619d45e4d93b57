import fc from 'fast-check';
import { Reader, Writer, isKafkaProtocolError, type KafkaProtocolError } from '../src';

/* eslint-disable @typescript-eslint/no-require-imports */
const KafkajsEncoder = require('kafkajs/src/protocol/encoder');
const KafkajsDecoder = require('kafkajs/src/protocol/decoder');
/* eslint-enable @typescript-eslint/no-require-imports */

const RUNS = { numRuns: 300 };
const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
const int32 = fc.integer({ min: -0x8000_0000, max: 0x7fff_ffff });
const uint32 = fc.integer({ min: 0, max: 0xffff_ffff });
const text = fc.string({ unit: 'grapheme', maxLength: 40 });
const bytes = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));

function written(write: (w: Writer) => void): Buffer {
  const writer = new Writer(16);
  write(writer);
  return Buffer.from(writer.toBuffer());
}

function thrown(fn: () => unknown): KafkaProtocolError {
  try {
    fn();
  } catch (err) {
    if (isKafkaProtocolError(err)) return err;
    throw new Error(`expected a KafkaProtocolError, got ${String(err)}`);
  }
  throw new Error('expected a KafkaProtocolError, nothing was thrown');
}

describe('round trips (Writer then Reader, which must also consume every byte)', () => {
  const cases: [string, fc.Arbitrary<unknown>, (w: Writer, v: never) => void, (r: Reader) => unknown][] = [
    ['int8', fc.integer({ min: -128, max: 127 }), (w, v) => w.writeInt8(v), (r) => r.readInt8()],
    ['int16', fc.integer({ min: -32768, max: 32767 }), (w, v) => w.writeInt16(v), (r) => r.readInt16()],
    ['int32', int32, (w, v) => w.writeInt32(v), (r) => r.readInt32()],
    ['uint32', uint32, (w, v) => w.writeUInt32(v), (r) => r.readUInt32()],
    ['int64', int64, (w, v) => w.writeInt64(v), (r) => r.readInt64()],
    ['int64 as number', fc.maxSafeInteger(), (w, v) => w.writeInt64(v), (r) => r.readInt64Number()],
    ['float64', fc.double({ noNaN: true }), (w, v) => w.writeFloat64(v), (r) => r.readFloat64()],
    ['boolean', fc.boolean(), (w, v) => w.writeBoolean(v), (r) => r.readBoolean()],
    ['varint', int32, (w, v) => w.writeVarInt(v), (r) => r.readVarInt()],
    ['varlong', int64, (w, v) => w.writeVarLong(v), (r) => r.readVarLong()],
    ['varlong as number', fc.maxSafeInteger(), (w, v) => w.writeVarLong(v), (r) => r.readVarLongNumber()],
    ['unsigned varint', uint32, (w, v) => w.writeUnsignedVarInt(v), (r) => r.readUnsignedVarInt()],
    ['string', text, (w, v) => w.writeString(v), (r) => r.readString()],
    ['nullable string', fc.option(text), (w, v) => w.writeNullableString(v), (r) => r.readNullableString()],
    ['compact string', text, (w, v) => w.writeCompactString(v), (r) => r.readCompactString()],
    [
      'compact nullable string',
      fc.option(text),
      (w, v) => w.writeCompactNullableString(v),
      (r) => r.readCompactNullableString(),
    ],
    ['bytes', bytes, (w, v) => w.writeBytes(v), (r) => r.readBytes()],
    ['nullable bytes', fc.option(bytes), (w, v) => w.writeNullableBytes(v), (r) => r.readNullableBytes()],
    ['compact bytes', bytes, (w, v) => w.writeCompactBytes(v), (r) => r.readCompactBytes()],
    [
      'compact nullable bytes',
      fc.option(bytes),
      (w, v) => w.writeCompactNullableBytes(v),
      (r) => r.readCompactNullableBytes(),
    ],
    [
      'array',
      fc.array(int32, { maxLength: 20 }),
      (w, v) => w.writeArray(v, (iw, i: number) => iw.writeInt32(i)),
      (r) => r.readArray((ir) => ir.readInt32()),
    ],
    [
      'nullable array',
      fc.option(fc.array(text, { maxLength: 10 })),
      (w, v) => w.writeNullableArray(v, (iw, s: string) => iw.writeString(s)),
      (r) => r.readNullableArray((ir) => ir.readString()),
    ],
    [
      'compact array',
      fc.array(int32, { maxLength: 20 }),
      (w, v) => w.writeCompactArray(v, (iw, i: number) => iw.writeInt32(i)),
      (r) => r.readCompactArray((ir) => ir.readInt32()),
    ],
    [
      'compact nullable array',
      fc.option(fc.array(text, { maxLength: 10 })),
      (w, v) => w.writeCompactNullableArray(v, (iw, s: string) => iw.writeCompactString(s)),
      (r) => r.readCompactNullableArray((ir) => ir.readCompactString()),
    ],
    ['uuid', fc.uuid({ version: [1, 2, 3, 4, 5, 6, 7, 8] }), (w, v) => w.writeUuid(v), (r) => r.readUuid()],
  ];

  for (const [name, arbitrary, write, read] of cases) {
    it(name, () => {
      fc.assert(
        fc.property(arbitrary, (value) => {
          const buffer = written((w) => write(w, value as never));
          const reader = new Reader(buffer);
          expect(read(reader)).toEqual(value);
          expect(reader.remaining).toBe(0);
        }),
        RUNS,
      );
    });
  }

  it('tagged fields: known tags are read, unknown ones skipped, in ascending tag order', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.record({ tag: fc.integer({ min: 0, max: 5000 }), value: text }), {
          selector: (f) => f.tag,
          maxLength: 6,
        }),
        fc.integer({ min: 0, max: 5000 }),
        (fields, unknownTag) => {
          const known = fields.filter((f) => f.tag !== unknownTag);
          const buffer = written((w) => {
            w.writeTaggedFields(
              [...known, { tag: unknownTag, value: 'ignored' }].map((f) => ({
                tag: f.tag,
                write: (fw: Writer) => void fw.writeCompactString(f.value),
              })),
            );
            w.writeInt8(7);
          });
          const seen: { tag: number; value: string }[] = [];
          const reader = new Reader(buffer);
          reader.readTaggedFields((tag, r) => {
            if (tag !== unknownTag) seen.push({ tag, value: r.readCompactString() });
          });
          expect(seen).toEqual([...known].sort((a, b) => a.tag - b.tag));
          expect(reader.readInt8()).toBe(7);
        },
      ),
      RUNS,
    );
  });
});

describe('exact bytes from independent sources', () => {
  it('varint, varlong and unsigned varint match kafkajs', () => {
    fc.assert(
      fc.property(int32, int64, uint32, (i, l, u) => {
        const ours = written((w) => w.writeVarInt(i).writeVarLong(l).writeUnsignedVarInt(u));
        const theirs = new KafkajsEncoder().writeVarInt(i).writeVarLong(l.toString()).writeUVarInt(u).buffer;
        expect(ours.toString('hex')).toBe(theirs.toString('hex'));
        const decoder = new KafkajsDecoder(ours);
        expect(decoder.readVarInt()).toBe(i);
        expect(decoder.readVarLong().toString()).toBe(l.toString());
        expect(decoder.readUVarInt()).toBe(u);
      }),
      RUNS,
    );
  });

  it('compact strings, bytes and arrays match kafkajs', () => {
    fc.assert(
      fc.property(fc.option(text), bytes, fc.array(int32, { maxLength: 10 }), (s, b, a) => {
        const ours = written((w) =>
          w
            .writeCompactNullableString(s)
            .writeCompactBytes(b)
            .writeCompactArray(a, (iw, i) => iw.writeInt32(i)),
        );
        const items = a.map((i) => new KafkajsEncoder().writeInt32(i));
        const theirs = new KafkajsEncoder().writeUVarIntString(s).writeUVarIntBytes(b).writeUVarIntArray(items).buffer;
        expect(ours.toString('hex')).toBe(theirs.toString('hex'));
      }),
      RUNS,
    );
  });

  it('varints match the zigzag examples of the protobuf encoding guide', () => {
    const examples: [number, string][] = [
      [0, '00'],
      [-1, '01'],
      [1, '02'],
      [-2, '03'],
      [63, '7e'],
      [-64, '7f'],
      [64, '8001'],
      [2147483647, 'feffffff0f'],
      [-2147483648, 'ffffffff0f'],
    ];
    for (const [value, hex] of examples) {
      expect(written((w) => w.writeVarInt(value)).toString('hex')).toBe(hex);
      expect(new Reader(Buffer.from(hex, 'hex')).readVarInt()).toBe(value);
    }
    expect(written((w) => w.writeUnsignedVarInt(300)).toString('hex')).toBe('ac02');
    expect(written((w) => w.writeVarLong(-(2n ** 63n))).toString('hex')).toBe('ffffffffffffffffff01');
  });

  it('null and empty values, UUIDs and empty tagged fields follow the protocol guide', () => {
    const hex = written((w) =>
      w
        .writeNullableString(null)
        .writeString('')
        .writeCompactNullableString(null)
        .writeCompactString('')
        .writeNullableBytes(null)
        .writeCompactNullableBytes(null)
        .writeNullableArray(null, () => undefined)
        .writeCompactNullableArray(null, () => undefined)
        .writeCompactArray([], () => undefined)
        .writeTaggedFields()
        .writeUuid('0123e4567-e89b-12d3-a456-426614174000'.slice(1)),
    ).toString('hex');
    expect(hex).toBe(
      'ffff0000' +
        '00' +
        '01' +
        'ffffffff' +
        '00' +
        'ffffffff' +
        '00' +
        '01' +
        '00' +
        '123e4567e89b12d3a456426614174000',
    );
  });
});

describe('bounds and hostile lengths', () => {
  it('reads past the end throw ERR_BUFFER_UNDERFLOW with the offset', () => {
    const reader = new Reader(Buffer.from('0001020304', 'hex'), 2);
    const error = thrown(() => reader.readInt32());
    expect(error.code).toBe('ERR_BUFFER_UNDERFLOW');
    expect(error.offset).toBe(2);
    expect(reader.offset).toBe(2);
  });

  it('a length field larger than the buffer fails before slicing or allocating', () => {
    const bytesLength = Buffer.from('7fffffff00', 'hex');
    expect(thrown(() => new Reader(bytesLength).readBytes())).toMatchObject({
      code: 'ERR_BUFFER_UNDERFLOW',
      offset: 4,
    });
    expect(thrown(() => new Reader(Buffer.from('7fff41', 'hex')).readString()).code).toBe('ERR_BUFFER_UNDERFLOW');
    expect(thrown(() => new Reader(Buffer.from('ffffffff0f41', 'hex')).readCompactBytes()).code).toBe(
      'ERR_BUFFER_UNDERFLOW',
    );
  });

  it('array counts that are negative or exceed the bytes remaining are ERR_INVALID_COUNT', () => {
    const read = (hex: string) => thrown(() => new Reader(Buffer.from(hex, 'hex')).readArray((r) => r.readInt8()));
    expect(read('fffffffe')).toMatchObject({ code: 'ERR_INVALID_COUNT', offset: 0 });
    expect(read('3b9aca000102')).toMatchObject({ code: 'ERR_INVALID_COUNT', offset: 0 });
    expect(thrown(() => new Reader(Buffer.from('ffffffff0f', 'hex')).readCompactArray((r) => r.readInt8())).code).toBe(
      'ERR_INVALID_COUNT',
    );
  });

  it('null where the protocol forbids it, and negative lengths, are ERR_INVALID_LENGTH', () => {
    expect(thrown(() => new Reader(Buffer.from('ffff', 'hex')).readString()).code).toBe('ERR_INVALID_LENGTH');
    expect(thrown(() => new Reader(Buffer.from('fffe', 'hex')).readNullableString()).code).toBe('ERR_INVALID_LENGTH');
    expect(thrown(() => new Reader(Buffer.from('fffffffe', 'hex')).readNullableBytes()).code).toBe(
      'ERR_INVALID_LENGTH',
    );
    expect(thrown(() => new Reader(Buffer.from('ffffffff', 'hex')).readArray((r) => r.readInt8())).code).toBe(
      'ERR_INVALID_LENGTH',
    );
  });

  it('over-long varints are ERR_INVALID_VARINT', () => {
    expect(thrown(() => new Reader(Buffer.from('ffffffff1f', 'hex')).readUnsignedVarInt()).code).toBe(
      'ERR_INVALID_VARINT',
    );
    expect(thrown(() => new Reader(Buffer.from('ffffffffffffffffff03', 'hex')).readVarLong()).code).toBe(
      'ERR_INVALID_VARINT',
    );
  });

  it('int64 beyond 2^53 as a number is ERR_OUT_OF_RANGE; the bigint reader is exact', () => {
    const big = written((w) => w.writeInt64(2n ** 53n));
    expect(thrown(() => new Reader(big).readInt64Number())).toMatchObject({ code: 'ERR_OUT_OF_RANGE', offset: 0 });
    expect(new Reader(big).readInt64()).toBe(2n ** 53n);
    const low = written((w) => w.writeInt64(-(2n ** 53n)));
    expect(thrown(() => new Reader(low).readInt64Number()).code).toBe('ERR_OUT_OF_RANGE');
    const varlong = written((w) => w.writeVarLong(2n ** 60n));
    expect(thrown(() => new Reader(varlong).readVarLongNumber()).code).toBe('ERR_OUT_OF_RANGE');
  });

  it('a tagged field that claims more bytes than remain is rejected', () => {
    expect(thrown(() => new Reader(Buffer.from('0101' + '7f' + '00', 'hex')).readTaggedFields()).code).toBe(
      'ERR_BUFFER_UNDERFLOW',
    );
  });

  it('decoding random bytes with any reader method only ever throws KafkaProtocolError', () => {
    const methods: ((r: Reader) => unknown)[] = [
      (r) => r.readString(),
      (r) => r.readNullableString(),
      (r) => r.readCompactString(),
      (r) => r.readCompactNullableString(),
      (r) => r.readBytes(),
      (r) => r.readNullableBytes(),
      (r) => r.readCompactBytes(),
      (r) => r.readCompactNullableBytes(),
      (r) => r.readArray((i) => i.readString()),
      (r) => r.readNullableArray((i) => i.readInt64()),
      (r) => r.readCompactArray((i) => i.readCompactString()),
      (r) => r.readCompactNullableArray((i) => i.readVarLong()),
      (r) => r.readTaggedFields((_tag, t) => t.readCompactString()),
      (r) => r.readUuid(),
      (r) => r.readVarInt(),
      (r) => r.readVarLong(),
      (r) => r.readVarLongNumber(),
      (r) => r.readUnsignedVarInt(),
      (r) => r.readInt64Number(),
      (r) => r.readFloat64(),
      (r) => r.readUInt32(),
    ];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 48 }), fc.integer({ min: 0, max: methods.length - 1 }), (data, i) => {
        try {
          methods[i](new Reader(Buffer.from(data)));
        } catch (err) {
          if (!isKafkaProtocolError(err)) throw err;
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('views and the writer', () => {
  it('bytes are views into the source buffer, not copies', () => {
    const source = Buffer.from('00000003616263', 'hex');
    const value = new Reader(source).readBytes();
    expect(value.toString()).toBe('abc');
    expect(value.buffer).toBe(source.buffer);
    expect(value.byteOffset).toBe(source.byteOffset + 4);
  });

  it('grows past its initial capacity and chains', () => {
    const payload = Buffer.alloc(10_000, 7);
    const out = new Writer(16).writeInt32(1).writeBytes(payload).writeInt8(-1).toBuffer();
    expect(out.length).toBe(4 + 4 + 10_000 + 1);
    expect(out.subarray(8, 10_008).equals(payload)).toBe(true);
    expect(out.readInt8(10_008)).toBe(-1);
  });

  it('rejects values that do not fit their wire type', () => {
    expect(thrown(() => new Writer().writeInt8(128)).code).toBe('ERR_OUT_OF_RANGE');
    expect(thrown(() => new Writer().writeInt32(2 ** 31)).code).toBe('ERR_OUT_OF_RANGE');
    expect(thrown(() => new Writer().writeInt16(1.5)).code).toBe('ERR_INVALID_ARGUMENT');
    expect(thrown(() => new Writer().writeInt64(2 ** 60)).code).toBe('ERR_INVALID_ARGUMENT');
    expect(thrown(() => new Writer().writeInt64(2n ** 63n)).code).toBe('ERR_OUT_OF_RANGE');
    expect(thrown(() => new Writer().writeString(null as unknown as string)).code).toBe('ERR_INVALID_ARGUMENT');
    expect(thrown(() => new Writer().writeString('x'.repeat(40_000))).code).toBe('ERR_OUT_OF_RANGE');
    expect(thrown(() => new Writer().writeUuid('not-a-uuid')).code).toBe('ERR_INVALID_ARGUMENT');
    expect(
      thrown(() =>
        new Writer().writeTaggedFields([
          { tag: 1, write: () => undefined },
          { tag: 1, write: () => undefined },
        ]),
      ).code,
    ).toBe('ERR_INVALID_ARGUMENT');
  });
});
