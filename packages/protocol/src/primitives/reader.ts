import { KafkaProtocolError } from '../errors';

const MAX_SAFE_BIGINT = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE_BIGINT = BigInt(Number.MIN_SAFE_INTEGER);
const TWO_POW_32 = 0x1_0000_0000;

/** Called for each tagged field whose tag a decoder knows; it reads the value from `reader` at the current offset. */
export type TaggedFieldReader = (tag: number, reader: Reader) => void;

/**
 * A cursor over a Buffer that reads the Kafka primitive types.
 *
 * Every read checks its bounds first and throws {@link KafkaProtocolError} (with the byte offset) instead of a
 * RangeError. Lengths and counts are compared with the bytes remaining before anything is sliced or allocated, so a
 * hostile length field cannot make the reader allocate. Bytes are returned as views (`subarray`), never copies.
 *
 * @example
 * const reader = new Reader(Buffer.from('000000070003', 'hex'));
 * reader.readInt32(); // 7
 * reader.readInt16(); // 3
 */
export class Reader {
  /** The buffer being read. Offsets in errors are relative to it. */
  readonly buffer: Buffer;
  /** The next byte to read. */
  offset: number;

  constructor(buffer: Buffer, offset = 0) {
    this.buffer = buffer;
    this.offset = offset;
  }

  /** Bytes left between the cursor and the end of the buffer. */
  get remaining(): number {
    return this.buffer.length - this.offset;
  }

  /** Throws ERR_BUFFER_UNDERFLOW unless `size` more bytes are available. */
  ensure(size: number, what = 'value'): void {
    if (this.buffer.length - this.offset < size) {
      throw new KafkaProtocolError(
        'ERR_BUFFER_UNDERFLOW',
        `${what} needs ${size} bytes but only ${Math.max(0, this.buffer.length - this.offset)} remain`,
        { offset: this.offset },
      );
    }
  }

  /** Moves the cursor forward by `size` bytes, which must exist. */
  skip(size: number): this {
    this.ensure(size, 'skipped field');
    this.offset += size;
    return this;
  }

  /** INT8. */
  readInt8(): number {
    this.ensure(1, 'int8');
    return this.buffer.readInt8(this.offset++);
  }

  /** INT16, big-endian like every Kafka integer. */
  readInt16(): number {
    this.ensure(2, 'int16');
    const value = this.buffer.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  /** INT32. */
  readInt32(): number {
    this.ensure(4, 'int32');
    const value = this.buffer.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  /** UINT32 (used by record batch CRCs). */
  readUInt32(): number {
    this.ensure(4, 'uint32');
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  /** Reads an int64 as a bigint (exact for every value). */
  readInt64(): bigint {
    this.ensure(8, 'int64');
    const value = this.buffer.readBigInt64BE(this.offset);
    this.offset += 8;
    return value;
  }

  /**
   * Reads an int64 as a number. Offsets, timestamps and durations fit; a value beyond ±(2^53 - 1) throws
   * ERR_OUT_OF_RANGE rather than silently losing precision.
   */
  readInt64Number(): number {
    this.ensure(8, 'int64');
    const start = this.offset;
    const high = this.buffer.readInt32BE(start);
    const low = this.buffer.readUInt32BE(start + 4);
    this.offset += 8;
    // |high| < 2^21 keeps high * 2^32 + low inside the safe range (the bound is checked exactly below).
    if (high < 0x20_0000 && high >= -0x20_0000) {
      const value = high * TWO_POW_32 + low;
      if (Number.isSafeInteger(value)) return value;
    }
    const big = this.buffer.readBigInt64BE(start);
    throw new KafkaProtocolError('ERR_OUT_OF_RANGE', `int64 ${big} is beyond Number.MAX_SAFE_INTEGER`, {
      offset: start,
    });
  }

  /** FLOAT64 (IEEE 754 double). */
  readFloat64(): number {
    this.ensure(8, 'float64');
    const value = this.buffer.readDoubleBE(this.offset);
    this.offset += 8;
    return value;
  }

  /** Reads a boolean: any non-zero byte is true, as in Kafka's Java implementation. */
  readBoolean(): boolean {
    this.ensure(1, 'boolean');
    return this.buffer[this.offset++] !== 0;
  }

  /** Reads an unsigned LEB128 varint of at most 5 bytes (a uint32). */
  readUnsignedVarInt(): number {
    const buffer = this.buffer;
    const start = this.offset;
    let offset = start;
    let value = 0;
    let multiplier = 1;
    for (let i = 0; i < 5; i++) {
      if (offset >= buffer.length) {
        throw new KafkaProtocolError('ERR_BUFFER_UNDERFLOW', 'varint runs past the end of the buffer', {
          offset: start,
        });
      }
      const byte = buffer[offset++];
      if (i === 4 && byte > 0x0f) break;
      value += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) {
        this.offset = offset;
        return value;
      }
      multiplier *= 128;
    }
    throw new KafkaProtocolError('ERR_INVALID_VARINT', 'unsigned varint is longer than 5 bytes or exceeds 32 bits', {
      offset: start,
    });
  }

  /** Reads a zigzag-encoded signed varint (int32 range). */
  readVarInt(): number {
    const raw = this.readUnsignedVarInt();
    // Zigzag: even numbers are non-negative. Arithmetic (not bitwise) keeps values above 2^31 correct.
    return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
  }

  /** Reads a zigzag-encoded signed varlong (int64 range) as a bigint. */
  readVarLong(): bigint {
    const buffer = this.buffer;
    const start = this.offset;
    let offset = start;
    let raw = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (offset >= buffer.length) {
        throw new KafkaProtocolError('ERR_BUFFER_UNDERFLOW', 'varlong runs past the end of the buffer', {
          offset: start,
        });
      }
      const byte = buffer[offset++];
      if (i === 9 && byte > 0x01) break;
      raw |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) {
        this.offset = offset;
        return (raw >> 1n) ^ -(raw & 1n);
      }
      shift += 7n;
    }
    throw new KafkaProtocolError('ERR_INVALID_VARINT', 'varlong is longer than 10 bytes or exceeds 64 bits', {
      offset: start,
    });
  }

  /** Reads a zigzag varlong as a number; beyond ±(2^53 - 1) it throws ERR_OUT_OF_RANGE. */
  readVarLongNumber(): number {
    const start = this.offset;
    const value = this.readVarLong();
    if (value > MAX_SAFE_BIGINT || value < MIN_SAFE_BIGINT) {
      throw new KafkaProtocolError('ERR_OUT_OF_RANGE', `varlong ${value} is beyond Number.MAX_SAFE_INTEGER`, {
        offset: start,
      });
    }
    return Number(value);
  }

  /** Reads `length` bytes as a view. */
  readRaw(length: number): Buffer {
    this.ensure(length, 'bytes');
    const start = this.offset;
    this.offset += length;
    return this.buffer.subarray(start, this.offset);
  }

  /** STRING: int16 length, then UTF-8. */
  readString(): string {
    const start = this.offset;
    const value = this.readNullableString();
    if (value === null) throw nullNotAllowed('string', start);
    return value;
  }

  /** NULLABLE_STRING: int16 length (-1 for null), then UTF-8. */
  readNullableString(): string | null {
    const start = this.offset;
    const length = this.readInt16();
    if (length === -1) return null;
    return this.readUtf8(length, start);
  }

  /** COMPACT_STRING: unsigned varint length + 1, then UTF-8. */
  readCompactString(): string {
    const start = this.offset;
    const value = this.readCompactNullableString();
    if (value === null) throw nullNotAllowed('compact string', start);
    return value;
  }

  /** COMPACT_NULLABLE_STRING: unsigned varint length + 1 (0 for null), then UTF-8. */
  readCompactNullableString(): string | null {
    const start = this.offset;
    const lengthPlusOne = this.readUnsignedVarInt();
    if (lengthPlusOne === 0) return null;
    return this.readUtf8(lengthPlusOne - 1, start);
  }

  /** BYTES: int32 length, then the bytes (a view). */
  readBytes(): Buffer {
    const start = this.offset;
    const value = this.readNullableBytes();
    if (value === null) throw nullNotAllowed('bytes', start);
    return value;
  }

  /** NULLABLE_BYTES (and NULLABLE_RECORDS): int32 length (-1 for null), then the bytes (a view). */
  readNullableBytes(): Buffer | null {
    const start = this.offset;
    const length = this.readInt32();
    if (length === -1) return null;
    return this.readSized(length, start);
  }

  /** COMPACT_BYTES: unsigned varint length + 1, then the bytes (a view). */
  readCompactBytes(): Buffer {
    const start = this.offset;
    const value = this.readCompactNullableBytes();
    if (value === null) throw nullNotAllowed('compact bytes', start);
    return value;
  }

  /** COMPACT_NULLABLE_BYTES (and COMPACT_NULLABLE_RECORDS): unsigned varint length + 1 (0 for null). */
  readCompactNullableBytes(): Buffer | null {
    const start = this.offset;
    const lengthPlusOne = this.readUnsignedVarInt();
    if (lengthPlusOne === 0) return null;
    return this.readSized(lengthPlusOne - 1, start);
  }

  /** ARRAY: int32 count, then the items. */
  readArray<T>(readItem: (reader: Reader) => T): T[] {
    const start = this.offset;
    const value = this.readNullableArray(readItem);
    if (value === null) throw nullNotAllowed('array', start);
    return value;
  }

  /** NULLABLE ARRAY: int32 count (-1 for null), then the items. */
  readNullableArray<T>(readItem: (reader: Reader) => T): T[] | null {
    const start = this.offset;
    const count = this.readInt32();
    if (count === -1) return null;
    return this.readItems(count, start, readItem);
  }

  /** COMPACT_ARRAY: unsigned varint count + 1, then the items. */
  readCompactArray<T>(readItem: (reader: Reader) => T): T[] {
    const start = this.offset;
    const value = this.readCompactNullableArray(readItem);
    if (value === null) throw nullNotAllowed('compact array', start);
    return value;
  }

  /** COMPACT_NULLABLE_ARRAY: unsigned varint count + 1 (0 for null), then the items. */
  readCompactNullableArray<T>(readItem: (reader: Reader) => T): T[] | null {
    const start = this.offset;
    const countPlusOne = this.readUnsignedVarInt();
    if (countPlusOne === 0) return null;
    return this.readItems(countPlusOne - 1, start, readItem);
  }

  /** UUID: 16 bytes, returned in the usual 8-4-4-4-12 lowercase hex form. */
  readUuid(): string {
    this.ensure(16, 'uuid');
    const hex = this.buffer.toString('hex', this.offset, this.offset + 16);
    this.offset += 16;
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  /**
   * TAGGED_FIELDS: a count, then (tag, size, value) triples. `onTag` reads the tags it knows; every other tag is
   * skipped, as the protocol requires for forward compatibility.
   */
  readTaggedFields(onTag?: TaggedFieldReader): void {
    const count = this.readUnsignedVarInt();
    if (count > this.remaining) {
      throw new KafkaProtocolError(
        'ERR_INVALID_COUNT',
        `${count} tagged fields cannot fit in ${this.remaining} bytes`,
        {
          offset: this.offset,
        },
      );
    }
    for (let i = 0; i < count; i++) {
      const tag = this.readUnsignedVarInt();
      const sizeOffset = this.offset;
      const size = this.readUnsignedVarInt();
      if (size > this.remaining) {
        throw new KafkaProtocolError('ERR_BUFFER_UNDERFLOW', `tagged field ${tag} of ${size} bytes runs past the end`, {
          offset: sizeOffset,
        });
      }
      const end = this.offset + size;
      if (onTag) {
        onTag(tag, this);
        if (this.offset > end) {
          throw new KafkaProtocolError('ERR_MALFORMED', `tagged field ${tag} is longer than its declared size`, {
            offset: sizeOffset,
          });
        }
      }
      this.offset = end;
    }
  }

  private readUtf8(length: number, start: number): string {
    if (length < 0) {
      throw new KafkaProtocolError('ERR_INVALID_LENGTH', `string length ${length} is negative`, { offset: start });
    }
    this.ensure(length, 'string');
    const from = this.offset;
    this.offset += length;
    return this.buffer.toString('utf8', from, this.offset);
  }

  private readSized(length: number, start: number): Buffer {
    if (length < 0) {
      throw new KafkaProtocolError('ERR_INVALID_LENGTH', `bytes length ${length} is negative`, { offset: start });
    }
    this.ensure(length, 'bytes');
    const from = this.offset;
    this.offset += length;
    return this.buffer.subarray(from, this.offset);
  }

  private readItems<T>(count: number, start: number, readItem: (reader: Reader) => T): T[] {
    // Every item takes at least one byte, so a count above the bytes left is corrupt; checking it first stops a
    // hostile count from sizing a huge array.
    if (count < 0 || count > this.remaining) {
      throw new KafkaProtocolError(
        'ERR_INVALID_COUNT',
        `array count ${count} is negative or larger than the ${this.remaining} bytes remaining`,
        { offset: start },
      );
    }
    const items: T[] = new Array(count);
    for (let i = 0; i < count; i++) items[i] = readItem(this);
    return items;
  }
}

function nullNotAllowed(what: string, offset: number): KafkaProtocolError {
  return new KafkaProtocolError('ERR_INVALID_LENGTH', `${what} is null where the protocol does not allow null`, {
    offset,
  });
}
