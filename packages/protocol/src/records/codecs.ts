/**
 * Compression codecs of Kafka record batches and message sets, in a registry that users can extend or override.
 *
 * Codecs are synchronous: decoding a fetched batch is CPU work on bytes already in memory, and the native codecs
 * finish a 1 MiB batch in a few milliseconds. A codec that must be asynchronous does not fit this interface;
 * decompress ahead of time instead.
 */
import * as zlib from 'node:zlib';
import { KafkaProtocolError } from '../errors';

/** Compression ids of the attributes field (the low three bits). */
export const CompressionType = {
  NONE: 0,
  GZIP: 1,
  SNAPPY: 2,
  LZ4: 3,
  ZSTD: 4,
} as const;

/** A compression id: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd (or an id a user registered). */
export type CompressionId = number;

/** Limits a codec must respect while decompressing. */
export interface DecompressLimits {
  /** Refuse output larger than this many bytes (decompression-bomb guard). */
  maxOutputBytes: number;
}

/** A compression codec: synchronous compress and decompress of whole buffers. */
export interface CompressionCodec {
  /** Name for messages, for example `gzip`. */
  readonly name: string;
  /** Compress `data`. */
  compress(data: Buffer): Buffer;
  /**
   * Decompress `data`, refusing to produce more than `limits.maxOutputBytes`. Throwing anything is fine: the
   * decoder reports it as `ERR_DECOMPRESSION`.
   */
  decompress(data: Buffer, limits: DecompressLimits): Buffer;
}

/** Refuses output over the limit; `size` when known (a header announced it), otherwise only that it is over. */
function tooLarge(name: string, size: number | undefined, limits: DecompressLimits): never {
  const what = size === undefined ? 'decompressed data' : `decompressed size ${size}`;
  throw new KafkaProtocolError(
    'ERR_DECOMPRESSION',
    `${name}: ${what} exceeds the limit of ${limits.maxOutputBytes} bytes (maxDecompressedBytes)`,
  );
}

function loadOptional<T>(name: string): T | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(name) as T;
  } catch {
    return undefined;
  }
}

function lazy<T>(load: () => T): () => T {
  let loaded = false;
  let value: T;
  return () => {
    if (!loaded) {
      value = load();
      loaded = true;
    }
    return value;
  };
}

/** gzip through `node:zlib`; several concatenated members are accepted, as Java's GZIPInputStream does. */
export const gzipCodec: CompressionCodec = {
  name: 'gzip',
  compress: (data) => zlib.gzipSync(data),
  decompress(data, limits) {
    try {
      return zlib.gunzipSync(data, { maxOutputLength: Math.max(1, limits.maxOutputBytes) });
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') tooLarge('gzip', undefined, limits);
      throw err;
    }
  },
};

interface SnappyModule {
  compressSync(input: Uint8Array): Buffer;
  uncompressSync(input: Uint8Array, options?: { asBuffer?: boolean }): string | Buffer;
}

const snappy = lazy(() => {
  const mod = loadOptional<SnappyModule>('snappy');
  if (!mod) throw new KafkaProtocolError('ERR_UNKNOWN_CODEC', 'snappy: the `snappy` package failed to load');
  return mod;
});

/** The header the Java producer's snappy-java SnappyOutputStream writes: magic, version 1, compatible version 1. */
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER_SIZE = 16;
/** snappy-java's default block size. */
const XERIAL_BLOCK_SIZE = 32 * 1024;

/** The uncompressed length a raw snappy block announces (its leading unsigned varint). */
function snappyUncompressedLength(block: Buffer): number {
  let result = 0;
  for (let i = 0, shift = 0; i < 5 && i < block.length; i++, shift += 7) {
    const b = block[i];
    result += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return result;
  }
  throw new KafkaProtocolError('ERR_DECOMPRESSION', 'snappy: invalid length header');
}

/** One raw snappy block, after `before` bytes of earlier blocks; refused from its length header when over. */
function snappyBlock(block: Buffer, before: number, limits: DecompressLimits): Buffer {
  const size = snappyUncompressedLength(block);
  if (before + size > limits.maxOutputBytes) tooLarge('snappy', before + size, limits);
  return snappy().uncompressSync(block, { asBuffer: true }) as Buffer;
}

/**
 * snappy through the `snappy` package (napi-rs). Decompression reads both the xerial framing that Java producers
 * write (`\x82SNAPPY\0`, then int32-length-prefixed raw blocks) and a bare raw block (librdkafka). Compression
 * writes the xerial framing, which every Kafka client reads.
 */
export const snappyCodec: CompressionCodec = {
  name: 'snappy',
  compress(data) {
    const parts: Buffer[] = [Buffer.alloc(XERIAL_HEADER_SIZE)];
    XERIAL_MAGIC.copy(parts[0]);
    parts[0].writeInt32BE(1, 8);
    parts[0].writeInt32BE(1, 12);
    for (let start = 0; start < data.length; start += XERIAL_BLOCK_SIZE) {
      const block = snappy().compressSync(data.subarray(start, start + XERIAL_BLOCK_SIZE));
      const length = Buffer.alloc(4);
      length.writeInt32BE(block.length);
      parts.push(length, block);
    }
    return Buffer.concat(parts);
  },
  decompress(data, limits) {
    if (data.length < XERIAL_HEADER_SIZE || !XERIAL_MAGIC.equals(data.subarray(0, XERIAL_MAGIC.length))) {
      return snappyBlock(data, 0, limits);
    }
    const blocks: Buffer[] = [];
    let total = 0;
    let pos = XERIAL_HEADER_SIZE;
    while (pos < data.length) {
      if (pos + 4 > data.length) throw new KafkaProtocolError('ERR_DECOMPRESSION', 'snappy: truncated xerial block');
      const length = data.readInt32BE(pos);
      pos += 4;
      if (length < 0 || pos + length > data.length) {
        throw new KafkaProtocolError('ERR_DECOMPRESSION', `snappy: xerial block length ${length} is invalid`);
      }
      const block = snappyBlock(data.subarray(pos, pos + length), total, limits);
      total += block.length;
      blocks.push(block);
      pos += length;
    }
    return blocks.length === 1 ? blocks[0] : Buffer.concat(blocks, total);
  },
};

interface Lz4Module {
  compressFrameSync(data: Buffer): Buffer;
  decompressFrameSync(data: Buffer): Buffer;
  /** Raw LZ4 block preceded by a little-endian uint32 output capacity (lz4_flex's size-prepended form). */
  uncompressSync(data: Uint8Array): Buffer;
}

const lz4 = lazy(() => {
  const mod = loadOptional<Lz4Module>('lz4-napi');
  if (!mod) throw new KafkaProtocolError('ERR_UNKNOWN_CODEC', 'lz4: the `lz4-napi` package failed to load');
  return mod;
});

const PRIME32_1 = 2654435761;
const PRIME32_2 = 2246822519;
const PRIME32_3 = 3266489917;
const PRIME32_4 = 668265263;
const PRIME32_5 = 374761393;

const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));
const read32 = (b: Uint8Array, i: number): number => b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24);

/** xxHash32 with seed 0: the LZ4 frame header checksum. Only ever run over a few header bytes. */
export function xxhash32(data: Uint8Array): number {
  let i = 0;
  let h: number;
  if (data.length >= 16) {
    let v1 = (PRIME32_1 + PRIME32_2) | 0;
    let v2 = PRIME32_2 | 0;
    let v3 = 0;
    let v4 = -PRIME32_1 | 0;
    for (; i + 16 <= data.length; i += 16) {
      v1 = Math.imul(rotl((v1 + Math.imul(read32(data, i), PRIME32_2)) | 0, 13), PRIME32_1);
      v2 = Math.imul(rotl((v2 + Math.imul(read32(data, i + 4), PRIME32_2)) | 0, 13), PRIME32_1);
      v3 = Math.imul(rotl((v3 + Math.imul(read32(data, i + 8), PRIME32_2)) | 0, 13), PRIME32_1);
      v4 = Math.imul(rotl((v4 + Math.imul(read32(data, i + 12), PRIME32_2)) | 0, 13), PRIME32_1);
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0;
  } else {
    h = PRIME32_5;
  }
  h = (h + data.length) | 0;
  for (; i + 4 <= data.length; i += 4) {
    h = Math.imul(rotl((h + Math.imul(read32(data, i), PRIME32_3)) | 0, 17), PRIME32_4);
  }
  for (; i < data.length; i++) h = Math.imul(rotl((h + Math.imul(data[i], PRIME32_5)) | 0, 11), PRIME32_1);
  h = Math.imul(h ^ (h >>> 15), PRIME32_2);
  h = Math.imul(h ^ (h >>> 13), PRIME32_3);
  return (h ^ (h >>> 16)) >>> 0;
}

const LZ4_FRAME_MAGIC = 0x184d2204;
const LZ4_BLOCK_MAX_SIZES = [0, 0, 0, 0, 64 << 10, 256 << 10, 1 << 20, 4 << 20];

/** What an LZ4 frame descriptor says. */
interface Lz4Descriptor {
  checksumAt: number;
  contentSize: number | undefined;
  blockMaxSize: number;
  blockIndependent: boolean;
  blockChecksum: boolean;
  contentChecksum: boolean;
}

/** The descriptor of the LZ4 frame at the start of `data`, or undefined when it is not one this code reads. */
function lz4Descriptor(data: Buffer): Lz4Descriptor | undefined {
  if (data.length < 7 || data.readUInt32LE(0) !== LZ4_FRAME_MAGIC) return undefined;
  const flg = data[4];
  const hasContentSize = (flg & 0x08) !== 0;
  const checksumAt = 6 + (hasContentSize ? 8 : 0) + (flg & 0x01 ? 4 : 0);
  if (data.length <= checksumAt) return undefined;
  return {
    checksumAt,
    contentSize: hasContentSize ? data.readUInt32LE(6) + data.readUInt32LE(10) * 2 ** 32 : undefined,
    blockMaxSize: LZ4_BLOCK_MAX_SIZES[(data[5] >>> 4) & 7],
    blockIndependent: (flg & 0x20) !== 0,
    blockChecksum: (flg & 0x10) !== 0,
    contentChecksum: (flg & 0x04) !== 0,
  };
}

/**
 * Decodes a single LZ4 frame block by block with lz4-napi's block decoder, which measured about twice as fast as
 * its streaming frame decoder (that one grows its output as it reads). Returns undefined for what this path does
 * not handle (dependent blocks, dictionaries, several frames, anything odd), which the frame decoder then takes.
 * Block and content checksums are not verified here: the batch CRC32C (or the message CRC32) covers these bytes.
 */
function lz4Blocks(data: Buffer, d: Lz4Descriptor, limits: DecompressLimits): Buffer | undefined {
  if (d.blockMaxSize === 0 || data[4] >>> 6 !== 1 || data[4] & 0x01) return undefined;
  const parts: Buffer[] = [];
  let total = 0;
  let pos = d.checksumAt + 1;
  for (;;) {
    if (pos + 4 > data.length) return undefined;
    const word = data.readUInt32LE(pos);
    pos += 4;
    if (word === 0) break;
    if (!d.blockIndependent && parts.length > 0) return undefined;
    const size = word & 0x7fffffff;
    if (size > d.blockMaxSize || size > data.length - pos) return undefined;
    const budget = limits.maxOutputBytes - total;
    let block: Buffer;
    if (word >>> 31) {
      if (size > budget) tooLarge('lz4', total + size, limits);
      block = data.subarray(pos, pos + size);
    } else {
      if (budget <= 0) tooLarge('lz4', undefined, limits);
      // LZ4 expands at most about 255-fold: a block header cannot make us reserve more than its bytes justify.
      const capacity = Math.min(d.blockMaxSize, budget, size * 255 + 64);
      const input = Buffer.allocUnsafe(4 + size);
      input.writeUInt32LE(capacity, 0);
      data.copy(input, 4, pos, pos + size);
      try {
        block = lz4().uncompressSync(input);
      } catch (err) {
        if (capacity === budget && budget < d.blockMaxSize) tooLarge('lz4', undefined, limits);
        throw err;
      }
    }
    parts.push(block);
    total += block.length;
    pos += size + (d.blockChecksum ? 4 : 0);
  }
  if (d.contentChecksum) pos += 4;
  if (pos !== data.length) return undefined;
  if (d.contentSize !== undefined && d.contentSize !== total) {
    throw new KafkaProtocolError('ERR_DECOMPRESSION', `lz4: frame announced ${d.contentSize} bytes but holds ${total}`);
  }
  return parts.length === 1 ? parts[0] : Buffer.concat(parts, total);
}

/**
 * lz4 in Kafka's format, the LZ4 *frame* format, through `lz4-napi`. Compression writes frames with
 * `compressFrameSync`; decompression parses the frame here and hands each block to the native block decoder,
 * with `decompressFrameSync` for the frames that path does not take.
 *
 * Kafka before 0.10 (and message format v0 since, KAFKA-1493) computed the frame header checksum over the magic
 * number too. Such a frame is accepted: a header checksum that matches that broken form is corrected before
 * decompressing. Any other header checksum mismatch fails.
 */
export const lz4Codec: CompressionCodec = {
  name: 'lz4',
  compress: (data) => lz4().compressFrameSync(data),
  decompress(data, limits) {
    const descriptor = lz4Descriptor(data);
    if (descriptor) {
      if (descriptor.contentSize !== undefined && descriptor.contentSize > limits.maxOutputBytes) {
        tooLarge('lz4', descriptor.contentSize, limits);
      }
      const { checksumAt } = descriptor;
      const stored = data[checksumAt];
      const correct = (xxhash32(data.subarray(4, checksumAt)) >>> 8) & 0xff;
      const broken = stored !== correct && stored === ((xxhash32(data.subarray(0, checksumAt)) >>> 8) & 0xff);
      if (stored === correct || broken) {
        const out = lz4Blocks(data, descriptor, limits);
        if (out) return out;
      }
      if (broken) {
        const fixed = Buffer.from(data);
        fixed[checksumAt] = correct;
        data = fixed;
      }
    }
    const out = lz4().decompressFrameSync(data);
    if (out.length > limits.maxOutputBytes) tooLarge('lz4', out.length, limits);
    return out;
  },
};

interface ZstdModule {
  compress(data: Uint8Array): Buffer;
  decompress(data: Uint8Array, parameters?: { windowLogMax?: number }): Buffer;
}
interface FzstdModule {
  decompress(data: Uint8Array, out?: Uint8Array): Uint8Array;
}

const zstdNative = lazy(() => loadOptional<ZstdModule>('zstd-napi'));
const fzstd = lazy(() => loadOptional<FzstdModule>('fzstd'));

const ZSTD_MAGIC = 0xfd2fb528;

/** The content size the first zstd frame header announces, when it does. */
function zstdContentSize(data: Buffer): number | undefined {
  if (data.length < 6 || data.readUInt32LE(0) !== ZSTD_MAGIC) return undefined;
  const fhd = data[4];
  const fcsFlag = fhd >>> 6;
  const singleSegment = (fhd >>> 5) & 1;
  let pos = 5 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][fhd & 3];
  const fcsSize = [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag];
  if (fcsSize === 0 || pos + fcsSize > data.length) return undefined;
  if (fcsSize === 1) return data[pos];
  if (fcsSize === 2) return data.readUInt16LE(pos) + 256;
  if (fcsSize === 4) return data.readUInt32LE(pos);
  const low = data.readUInt32LE(pos);
  pos += 4;
  return low + data.readUInt32LE(pos) * 2 ** 32;
}

/**
 * zstd through `zstd-napi`, with the pure-JS `fzstd` for decompression when the native module does not load.
 * The window is capped at 2^27 bytes (128 MiB), zstd's own default for decoders.
 */
export const zstdCodec: CompressionCodec = {
  name: 'zstd',
  compress(data) {
    const native = zstdNative();
    if (!native)
      throw new KafkaProtocolError('ERR_UNKNOWN_CODEC', 'zstd: compression needs `zstd-napi`, which failed to load');
    return native.compress(data);
  },
  decompress(data, limits) {
    const announced = zstdContentSize(data);
    if (announced !== undefined && announced > limits.maxOutputBytes) tooLarge('zstd', announced, limits);
    const native = zstdNative();
    let out: Buffer;
    if (native) {
      out = native.decompress(data, { windowLogMax: 27 });
    } else {
      const js = fzstd();
      if (!js) throw new KafkaProtocolError('ERR_UNKNOWN_CODEC', 'zstd: neither `zstd-napi` nor `fzstd` loaded');
      const raw = js.decompress(data);
      out = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    }
    if (out.length > limits.maxOutputBytes) tooLarge('zstd', out.length, limits);
    return out;
  },
};

/** The built-in codecs by compression id. */
const BUILT_IN: ReadonlyArray<readonly [number, CompressionCodec]> = [
  [CompressionType.GZIP, gzipCodec],
  [CompressionType.SNAPPY, snappyCodec],
  [CompressionType.LZ4, lz4Codec],
  [CompressionType.ZSTD, zstdCodec],
];

/**
 * Compression codecs by id. `new CodecRegistry()` holds the four built-in codecs; `register` adds or replaces one.
 *
 * @example
 * const codecs = new CodecRegistry().register(CompressionType.ZSTD, myZstd);
 * decodeRecords(bytes, { codecs });
 */
export class CodecRegistry {
  private readonly codecs = new Map<number, CompressionCodec>();

  /** A registry with the built-in gzip, snappy, lz4 and zstd codecs (`{ builtIn: false }` for an empty one). */
  constructor(options: { builtIn?: boolean } = {}) {
    if (options.builtIn !== false) for (const [id, codec] of BUILT_IN) this.codecs.set(id, codec);
  }

  /** Add or replace the codec for compression id `id` (1 to 7). Returns the registry for chaining. */
  register(id: CompressionId, codec: CompressionCodec): this {
    if (!Number.isInteger(id) || id < 1 || id > 7) {
      throw new KafkaProtocolError('ERR_INVALID_ARGUMENT', `compression id must be an integer from 1 to 7, got ${id}`);
    }
    this.codecs.set(id, codec);
    return this;
  }

  /** The codec for `id`, or undefined. */
  get(id: CompressionId): CompressionCodec | undefined {
    return this.codecs.get(id);
  }
}

/** The registry used when no `codecs` option is given: the built-in codecs. */
export const defaultCodecs: CodecRegistry = new CodecRegistry();
