import { KafkaProtocolError } from '../errors';

const INITIAL_CAPACITY = 256;
const TWO_POW_32 = 0x1_0000_0000;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MASK = 2n ** 64n - 1n;
const UUID_PATTERN = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** A tagged field to write: its tag and a function that writes its value. */
export interface TaggedField {
  /** The tag number from the message definition. */
  tag: number;
  /** Writes the value; its size is measured and written before it. */
  write: (writer: Writer) => void;
}

/**
 * A growable, chainable buffer writer for the Kafka primitive types.
 *
 * Values are checked against their wire type (an int16 that does not fit throws ERR_OUT_OF_RANGE, a non-nullable
 * string that is null throws ERR_INVALID_ARGUMENT) so that a bad request fails here, not on the broker.
 *
 * @example
 * const bytes = new Writer().writeInt16(18).writeInt16(3).writeInt32(1).toBuffer();
 */
export class Writer {
  private buffer: Buffer;
  private length = 0;

  constructor(initialCapacity = INITIAL_CAPACITY) {
    this.buffer = Buffer.allocUnsafe(Math.max(16, initialCapacity));
  }

  /** Bytes written so far. */
  get size(): number {
    return this.length;
  }

  /** The bytes written so far, as a view of the internal buffer (valid until the next write). */
  toBuffer(): Buffer {
    return this.buffer.subarray(0, this.length);
  }

  /** INT8. */
  writeInt8(value: number): this {
    checkInt(value, -0x80, 0x7f, 'int8');
    this.reserve(1);
    this.buffer.writeInt8(value, this.length);
    this.length += 1;
    return this;
  }

  /** INT16, big-endian like every Kafka integer. */
  writeInt16(value: number): this {
    checkInt(value, -0x8000, 0x7fff, 'int16');
    this.reserve(2);
    this.buffer.writeInt16BE(value, this.length);
    this.length += 2;
    return this;
  }

  /** INT32. */
  writeInt32(value: number): this {
    checkInt(value, -0x8000_0000, 0x7fff_ffff, 'int32');
    this.reserve(4);
    this.buffer.writeInt32BE(value, this.length);
    this.length += 4;
    return this;
  }

  /** UINT32. */
  writeUInt32(value: number): this {
    checkInt(value, 0, 0xffff_ffff, 'uint32');
    this.reserve(4);
    this.buffer.writeUInt32BE(value, this.length);
    this.length += 4;
    return this;
  }

  /** Writes an int64 from a bigint or a safe integer number. */
  writeInt64(value: bigint | number): this {
    if (typeof value === 'number' && Number.isSafeInteger(value)) {
      // Offsets and timestamps are numbers: split into two int32 halves instead of going through a bigint.
      const high = Math.floor(value / TWO_POW_32);
      this.reserve(8);
      this.buffer.writeInt32BE(high, this.length);
      this.buffer.writeUInt32BE(value - high * TWO_POW_32, this.length + 4);
      this.length += 8;
      return this;
    }
    const big = toInt64(value);
    this.reserve(8);
    this.buffer.writeBigInt64BE(big, this.length);
    this.length += 8;
    return this;
  }

  /** FLOAT64 (IEEE 754 double). */
  writeFloat64(value: number): this {
    if (typeof value !== 'number') throw invalid(`float64 must be a number, got ${typeof value}`);
    this.reserve(8);
    this.buffer.writeDoubleBE(value, this.length);
    this.length += 8;
    return this;
  }

  /** BOOLEAN: 1 for true, 0 for false. */
  writeBoolean(value: boolean): this {
    if (typeof value !== 'boolean') throw invalid(`boolean expected, got ${typeof value}`);
    this.reserve(1);
    this.buffer[this.length++] = value ? 1 : 0;
    return this;
  }

  /** Writes an unsigned LEB128 varint (0 to 2^32 - 1). */
  writeUnsignedVarInt(value: number): this {
    checkInt(value, 0, 0xffff_ffff, 'unsigned varint');
    this.reserve(5);
    let rest = value;
    while (rest >= 0x80) {
      this.buffer[this.length++] = (rest & 0x7f) | 0x80;
      rest = Math.floor(rest / 128);
    }
    this.buffer[this.length++] = rest;
    return this;
  }

  /** Writes a zigzag-encoded signed varint (int32 range). */
  writeVarInt(value: number): this {
    checkInt(value, -0x8000_0000, 0x7fff_ffff, 'varint');
    return this.writeUnsignedVarInt(value >= 0 ? value * 2 : -value * 2 - 1);
  }

  /** Writes a zigzag-encoded signed varlong (int64 range) from a bigint or a safe integer number. */
  writeVarLong(value: bigint | number): this {
    const big = toInt64(value);
    let rest = ((big << 1n) ^ (big >> 63n)) & UINT64_MASK;
    this.reserve(10);
    while (rest >= 0x80n) {
      this.buffer[this.length++] = Number(rest & 0x7fn) | 0x80;
      rest >>= 7n;
    }
    this.buffer[this.length++] = Number(rest);
    return this;
  }

  /** Appends raw bytes with no length prefix. */
  writeRaw(bytes: Uint8Array): this {
    this.reserve(bytes.length);
    this.buffer.set(bytes, this.length);
    this.length += bytes.length;
    return this;
  }

  /** STRING: int16 length, then UTF-8. */
  writeString(value: string): this {
    if (typeof value !== 'string') throw invalid(`string expected, got ${value === null ? 'null' : typeof value}`);
    return this.writeNullableString(value);
  }

  /** NULLABLE_STRING: int16 length (-1 for null), then UTF-8. */
  writeNullableString(value: string | null | undefined): this {
    if (value === null || value === undefined) return this.writeInt16(-1);
    const length = Buffer.byteLength(value, 'utf8');
    if (length > 0x7fff) throw new KafkaProtocolError('ERR_OUT_OF_RANGE', `string of ${length} bytes exceeds 32767`);
    this.writeInt16(length);
    return this.writeUtf8(value, length);
  }

  /** COMPACT_STRING: unsigned varint length + 1, then UTF-8. */
  writeCompactString(value: string): this {
    if (typeof value !== 'string') throw invalid(`string expected, got ${value === null ? 'null' : typeof value}`);
    return this.writeCompactNullableString(value);
  }

  /** COMPACT_NULLABLE_STRING: unsigned varint length + 1 (0 for null), then UTF-8. */
  writeCompactNullableString(value: string | null | undefined): this {
    if (value === null || value === undefined) return this.writeUnsignedVarInt(0);
    const length = Buffer.byteLength(value, 'utf8');
    if (length > 0x7fff) throw new KafkaProtocolError('ERR_OUT_OF_RANGE', `string of ${length} bytes exceeds 32767`);
    this.writeUnsignedVarInt(length + 1);
    return this.writeUtf8(value, length);
  }

  /** BYTES: int32 length, then the bytes. */
  writeBytes(value: Uint8Array): this {
    if (!(value instanceof Uint8Array)) throw invalid('bytes must be a Buffer or Uint8Array');
    return this.writeInt32(value.length).writeRaw(value);
  }

  /** NULLABLE_BYTES: int32 length (-1 for null), then the bytes. */
  writeNullableBytes(value: Uint8Array | null | undefined): this {
    if (value === null || value === undefined) return this.writeInt32(-1);
    return this.writeBytes(value);
  }

  /** COMPACT_BYTES: unsigned varint length + 1, then the bytes. */
  writeCompactBytes(value: Uint8Array): this {
    if (!(value instanceof Uint8Array)) throw invalid('bytes must be a Buffer or Uint8Array');
    return this.writeUnsignedVarInt(value.length + 1).writeRaw(value);
  }

  /** COMPACT_NULLABLE_BYTES: unsigned varint length + 1 (0 for null), then the bytes. */
  writeCompactNullableBytes(value: Uint8Array | null | undefined): this {
    if (value === null || value === undefined) return this.writeUnsignedVarInt(0);
    return this.writeCompactBytes(value);
  }

  /** ARRAY: int32 count, then each item. */
  writeArray<T>(items: readonly T[], writeItem: (writer: Writer, item: T) => void): this {
    if (!Array.isArray(items)) throw invalid('array expected');
    this.writeInt32(items.length);
    for (const item of items) writeItem(this, item);
    return this;
  }

  /** NULLABLE ARRAY: int32 count (-1 for null), then each item. */
  writeNullableArray<T>(items: readonly T[] | null | undefined, writeItem: (writer: Writer, item: T) => void): this {
    if (items === null || items === undefined) return this.writeInt32(-1);
    return this.writeArray(items, writeItem);
  }

  /** COMPACT_ARRAY: unsigned varint count + 1, then each item. */
  writeCompactArray<T>(items: readonly T[], writeItem: (writer: Writer, item: T) => void): this {
    if (!Array.isArray(items)) throw invalid('array expected');
    this.writeUnsignedVarInt(items.length + 1);
    for (const item of items) writeItem(this, item);
    return this;
  }

  /** COMPACT_NULLABLE_ARRAY: unsigned varint count + 1 (0 for null), then each item. */
  writeCompactNullableArray<T>(
    items: readonly T[] | null | undefined,
    writeItem: (writer: Writer, item: T) => void,
  ): this {
    if (items === null || items === undefined) return this.writeUnsignedVarInt(0);
    return this.writeCompactArray(items, writeItem);
  }

  /** UUID: 16 bytes, from the 8-4-4-4-12 hex form (dashes optional). */
  writeUuid(value: string): this {
    if (typeof value !== 'string' || !UUID_PATTERN.test(value)) throw invalid(`not a UUID: ${String(value)}`);
    return this.writeRaw(Buffer.from(value.replace(/-/g, ''), 'hex'));
  }

  /**
   * TAGGED_FIELDS: the count, then each field as (tag, size, value), in ascending tag order as the protocol
   * requires. With no fields this is the single byte 0.
   */
  writeTaggedFields(fields: readonly TaggedField[] = []): this {
    this.writeUnsignedVarInt(fields.length);
    if (fields.length === 0) return this;
    const sorted = [...fields].sort((a, b) => a.tag - b.tag);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i].tag === sorted[i - 1].tag) throw invalid(`tagged field ${sorted[i].tag} appears twice`);
    }
    for (const field of sorted) {
      const value = new Writer(64);
      field.write(value);
      this.writeUnsignedVarInt(field.tag).writeUnsignedVarInt(value.size).writeRaw(value.toBuffer());
    }
    return this;
  }

  private writeUtf8(value: string, length: number): this {
    this.reserve(length);
    this.buffer.write(value, this.length, length, 'utf8');
    this.length += length;
    return this;
  }

  private reserve(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.buffer.length) return;
    let capacity = this.buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = Buffer.allocUnsafe(capacity);
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }
}

function invalid(message: string): KafkaProtocolError {
  return new KafkaProtocolError('ERR_INVALID_ARGUMENT', message);
}

function checkInt(value: number, min: number, max: number, what: string): void {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw invalid(`${what} must be an integer, got ${String(value)}`);
  }
  if (value < min || value > max) {
    throw new KafkaProtocolError('ERR_OUT_OF_RANGE', `${value} does not fit in ${what} [${min}, ${max}]`);
  }
}

function toInt64(value: bigint | number): bigint {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      throw invalid(`int64 given as a number must be a safe integer, got ${value}; pass a bigint`);
    }
    return BigInt(value);
  }
  if (typeof value !== 'bigint') throw invalid(`int64 must be a bigint or a number, got ${typeof value}`);
  if (value < INT64_MIN || value > INT64_MAX) {
    throw new KafkaProtocolError('ERR_OUT_OF_RANGE', `${value} does not fit in int64`);
  }
  return value;
}
