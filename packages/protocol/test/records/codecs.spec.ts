import { randomBytes } from 'node:crypto';
import * as zlib from 'node:zlib';
import * as lz4napi from 'lz4-napi';
import * as snappy from 'snappy';
import * as fzstd from 'fzstd';
import * as zstdNapi from 'zstd-napi';
import {
  CodecRegistry,
  CompressionType,
  defaultCodecs,
  gzipCodec,
  lz4Codec,
  snappyCodec,
  zstdCodec,
  type CompressionCodec,
} from '../../src/records';
import { xxhash32 } from '../../src/records/codecs';

const LIMIT = { maxOutputBytes: 1 << 24 };
/** Compressible bytes: text with some randomness. */
const sample = (n: number): Buffer =>
  Buffer.from(
    Array.from({ length: n }, (_, i) => `record-${i % 97}-${(i * 7919) % 13};`)
      .join('')
      .slice(0, n),
  );

describe('codecs', () => {
  it.each([
    ['gzip', gzipCodec],
    ['snappy', snappyCodec],
    ['lz4', lz4Codec],
    ['zstd', zstdCodec],
  ] as Array<[string, CompressionCodec]>)('%s round-trips empty, small, large and random data', (_name, codec) => {
    for (const data of [Buffer.alloc(0), Buffer.from('x'), sample(200_000), randomBytes(70_000)]) {
      const compressed = codec.compress(data);
      expect(codec.decompress(compressed, LIMIT).equals(data)).toBe(true);
    }
  });

  it('registry holds the built-ins by Kafka id and accepts overrides', () => {
    expect(defaultCodecs.get(CompressionType.GZIP)).toBe(gzipCodec);
    expect(defaultCodecs.get(CompressionType.SNAPPY)).toBe(snappyCodec);
    expect(defaultCodecs.get(CompressionType.LZ4)).toBe(lz4Codec);
    expect(defaultCodecs.get(CompressionType.ZSTD)).toBe(zstdCodec);
    expect(new CodecRegistry({ builtIn: false }).get(1)).toBeUndefined();
    const custom: CompressionCodec = { name: 'mine', compress: (d) => d, decompress: (d) => d };
    expect(new CodecRegistry().register(4, custom).get(4)).toBe(custom);
    expect(() => new CodecRegistry().register(0, custom)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
    expect(() => new CodecRegistry().register(8, custom)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
  });

  describe('gzip', () => {
    it('reads concatenated members, as Java does', () => {
      const both = Buffer.concat([zlib.gzipSync('ab'), zlib.gzipSync('cd')]);
      expect(gzipCodec.decompress(both, LIMIT).toString()).toBe('abcd');
    });
  });

  describe('snappy', () => {
    it('writes the xerial framing of snappy-java: magic, version 1, compatible 1, int32-length blocks', () => {
      const data = sample(100_000);
      const framed = snappyCodec.compress(data);
      expect(framed.subarray(0, 16).toString('hex')).toBe('82534e415050590000000001' + '00000001');
      // 100 000 bytes in 32 KiB blocks: four blocks, each a raw snappy block.
      let pos = 16;
      const blocks: Buffer[] = [];
      while (pos < framed.length) {
        const n = framed.readInt32BE(pos);
        blocks.push(snappy.uncompressSync(framed.subarray(pos + 4, pos + 4 + n)) as Buffer);
        pos += 4 + n;
      }
      expect(blocks.map((b) => b.length)).toEqual([32768, 32768, 32768, 100_000 - 3 * 32768]);
      expect(Buffer.concat(blocks).equals(data)).toBe(true);
    });

    it('reads a raw snappy block (what librdkafka writes)', () => {
      const data = sample(5000);
      expect(snappyCodec.decompress(snappy.compressSync(data), LIMIT).equals(data)).toBe(true);
    });

    it('rejects a bad xerial block length', () => {
      const framed = snappyCodec.compress(sample(100));
      framed.writeInt32BE(1 << 30, 16);
      expect(() => snappyCodec.decompress(framed, LIMIT)).toThrow(/xerial block length/);
    });
  });

  describe('lz4', () => {
    it('writes the LZ4 frame format (magic 04 22 4d 18) that lz4-napi and Kafka read', () => {
      const data = sample(10_000);
      const frame = lz4Codec.compress(data);
      expect(frame.subarray(0, 4).toString('hex')).toBe('04224d18');
      expect(lz4napi.decompressFrameSync(frame).equals(data)).toBe(true);
    });

    it('computes the header checksum with xxHash32 (checked against the frames lz4-napi writes)', () => {
      expect(xxhash32(Buffer.alloc(0))).toBe(0x02cc5d05);
      expect(xxhash32(Buffer.from('abc'))).toBe(0x32d153ff);
      expect(xxhash32(Buffer.from('Nobody inspects the spammish repetition'))).toBe(0xe2293b2f);
      const frame = lz4napi.compressFrameSync(sample(100));
      expect(frame[6]).toBe((xxhash32(frame.subarray(4, 6)) >>> 8) & 0xff);
    });

    it('reads frames with block and content checksums, stored (incompressible) blocks and several blocks', () => {
      const data = Buffer.concat([sample(150_000), randomBytes(100_000), sample(10)]);
      for (const options of [{}, { blockChecksums: true, contentChecksum: true }]) {
        const frame = lz4napi.compressFrameSync(data, options);
        expect(lz4Codec.decompress(frame, LIMIT).equals(data)).toBe(true);
      }
    });

    it('hands dependent (linked) blocks to the native frame decoder', () => {
      const data = sample(200_000);
      const frame = Buffer.from(lz4napi.compressFrameSync(data));
      frame[4] &= ~0x20; // clear block independence: independent blocks are valid linked blocks too
      frame[6] = (xxhash32(frame.subarray(4, 6)) >>> 8) & 0xff;
      expect(lz4Codec.decompress(frame, LIMIT).equals(data)).toBe(true);
    });

    it('fails on a corrupt block', () => {
      const frame = Buffer.from(lz4napi.compressFrameSync(sample(5000)));
      frame.fill(0xff, 20, 40);
      expect(() => lz4Codec.decompress(frame, LIMIT)).toThrow();
    });

    it('accepts the broken header checksum of Kafka 0.8 and message format v0 (KAFKA-1493)', () => {
      const data = sample(1000);
      const frame = Buffer.from(lz4napi.compressFrameSync(data));
      const broken = (xxhash32(frame.subarray(0, 6)) >>> 8) & 0xff;
      expect(broken).not.toBe(frame[6]);
      frame[6] = broken;
      expect(() => lz4napi.decompressFrameSync(frame)).toThrow();
      expect(lz4Codec.decompress(frame, LIMIT).equals(data)).toBe(true);
      // Any other wrong checksum still fails.
      frame[6] = broken ^ 0x55;
      expect(() => lz4Codec.decompress(frame, LIMIT)).toThrow();
    });
  });

  describe('zstd', () => {
    it('writes frames that the pure-JS fzstd reads too', () => {
      const data = sample(50_000);
      const frame = zstdCodec.compress(data);
      expect(Buffer.from(fzstd.decompress(frame)).equals(data)).toBe(true);
      expect(zstdNapi.decompress(frame).equals(data)).toBe(true);
    });
  });

  describe('decompression-bomb guard', () => {
    const big = Buffer.alloc(4 << 20, 0x61);
    const small = { maxOutputBytes: 1 << 20 };
    it.each([
      ['gzip', gzipCodec],
      ['snappy (xerial)', snappyCodec],
      ['lz4', lz4Codec],
      ['zstd', zstdCodec],
    ] as Array<[string, CompressionCodec]>)('%s refuses output over maxOutputBytes', (_name, codec) => {
      const compressed = codec.compress(big);
      expect(compressed.length).toBeLessThan(1 << 20);
      expect(() => codec.decompress(compressed, small)).toThrow(
        expect.objectContaining({ code: 'ERR_DECOMPRESSION', message: expect.stringMatching(/exceeds the limit/) }),
      );
      expect(codec.decompress(compressed, { maxOutputBytes: big.length }).length).toBe(big.length);
    });

    it('raw snappy is refused from its length header, before decompressing', () => {
      expect(() => snappyCodec.decompress(snappy.compressSync(big), small)).toThrow(/exceeds the limit/);
    });
  });
});
