import type { Reader, TaggedFieldReader } from '../primitives/reader';
import type { TaggedField, Writer } from '../primitives/writer';

/**
 * The two spellings of strings, bytes, arrays and struct endings in the Kafka protocol: classic (int16/int32
 * lengths, no tagged fields) and compact (unsigned varint lengths, tagged fields after every struct), used by
 * "flexible" versions. An API implementation picks one per version and writes each field once.
 */
export interface FieldEncoding {
  /** True for compact strings/arrays and tagged fields (KIP-482 flexible versions). */
  readonly flexible: boolean;
  readString(reader: Reader): string;
  readNullableString(reader: Reader): string | null;
  readBytes(reader: Reader): Buffer;
  readNullableBytes(reader: Reader): Buffer | null;
  readArray<T>(reader: Reader, readItem: (reader: Reader) => T): T[];
  readNullableArray<T>(reader: Reader, readItem: (reader: Reader) => T): T[] | null;
  /** Reads the tagged fields ending a struct; a no-op in classic versions. */
  readTaggedFields(reader: Reader, onTag?: TaggedFieldReader): void;
  writeString(writer: Writer, value: string): void;
  writeNullableString(writer: Writer, value: string | null | undefined): void;
  writeBytes(writer: Writer, value: Uint8Array): void;
  writeNullableBytes(writer: Writer, value: Uint8Array | null | undefined): void;
  writeArray<T>(writer: Writer, items: readonly T[], writeItem: (writer: Writer, item: T) => void): void;
  writeNullableArray<T>(
    writer: Writer,
    items: readonly T[] | null | undefined,
    writeItem: (writer: Writer, item: T) => void,
  ): void;
  /** Writes the tagged fields ending a struct (none by default); a no-op in classic versions. */
  writeTaggedFields(writer: Writer, fields?: readonly TaggedField[]): void;
}

/** Classic encoding: int16 string lengths, int32 byte lengths and array counts, no tagged fields. */
export const CLASSIC_ENCODING: FieldEncoding = {
  flexible: false,
  readString: (r) => r.readString(),
  readNullableString: (r) => r.readNullableString(),
  readBytes: (r) => r.readBytes(),
  readNullableBytes: (r) => r.readNullableBytes(),
  readArray: (r, item) => r.readArray(item),
  readNullableArray: (r, item) => r.readNullableArray(item),
  readTaggedFields: () => undefined,
  writeString: (w, v) => void w.writeString(v),
  writeNullableString: (w, v) => void w.writeNullableString(v),
  writeBytes: (w, v) => void w.writeBytes(v),
  writeNullableBytes: (w, v) => void w.writeNullableBytes(v),
  writeArray: (w, items, item) => void w.writeArray(items, item),
  writeNullableArray: (w, items, item) => void w.writeNullableArray(items, item),
  writeTaggedFields: () => undefined,
};

/** Compact encoding of flexible versions: unsigned varint lengths (+1, 0 for null) and tagged fields. */
export const COMPACT_ENCODING: FieldEncoding = {
  flexible: true,
  readString: (r) => r.readCompactString(),
  readNullableString: (r) => r.readCompactNullableString(),
  readBytes: (r) => r.readCompactBytes(),
  readNullableBytes: (r) => r.readCompactNullableBytes(),
  readArray: (r, item) => r.readCompactArray(item),
  readNullableArray: (r, item) => r.readCompactNullableArray(item),
  readTaggedFields: (r, onTag) => r.readTaggedFields(onTag),
  writeString: (w, v) => void w.writeCompactString(v),
  writeNullableString: (w, v) => void w.writeCompactNullableString(v),
  writeBytes: (w, v) => void w.writeCompactBytes(v),
  writeNullableBytes: (w, v) => void w.writeCompactNullableBytes(v),
  writeArray: (w, items, item) => void w.writeCompactArray(items, item),
  writeNullableArray: (w, items, item) => void w.writeCompactNullableArray(items, item),
  writeTaggedFields: (w, fields) => void w.writeTaggedFields(fields),
};

/** Reads one INT32 array item. */
export const readInt32Item = (reader: Reader): number => reader.readInt32();

/** Writes one INT32 array item. */
export const writeInt32Item = (writer: Writer, value: number): void => void writer.writeInt32(value);
