import { randomBytes } from 'node:crypto';
import { crc32, crc32c, crc32cImplementation } from '../../src/records';
import { crc32cJs, crc32Js } from '../../src/records/crc';

const CHECK = Buffer.from('123456789');

describe('crc32c', () => {
  it('uses the native implementation here', () => {
    expect(crc32cImplementation).toBe('native');
  });

  it.each([
    ['native', crc32c],
    ['js', crc32cJs],
  ])('%s gives the check values of RFC 3720 and the CRC catalogue', (_name, fn) => {
    expect(fn(CHECK)).toBe(0xe3069283);
    expect(fn(Buffer.alloc(0))).toBe(0);
    // RFC 3720 B.4: 32 bytes of zeros, of 0xff, and an incrementing sequence.
    expect(fn(Buffer.alloc(32, 0))).toBe(0x8a9136aa);
    expect(fn(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
    expect(fn(Buffer.from(Array.from({ length: 32 }, (_, i) => i)))).toBe(0x46dd794e);
  });

  it('js fallback agrees with native on random lengths and continues a running checksum', () => {
    for (let n = 0; n < 200; n += 7) {
      const data = randomBytes(n * 13 + (n % 5));
      expect(crc32cJs(data)).toBe(crc32c(data));
      const cut = Math.floor(data.length / 3);
      expect(crc32cJs(data.subarray(cut), crc32cJs(data.subarray(0, cut)))).toBe(crc32c(data));
    }
  });
});

describe('crc32', () => {
  it.each([
    ['zlib', crc32],
    ['js', crc32Js],
  ])('%s gives the IEEE check value', (_name, fn) => {
    expect(fn(CHECK)).toBe(0xcbf43926);
    expect(fn(Buffer.from('The quick brown fox jumps over the lazy dog'))).toBe(0x414fa339);
  });

  it('js fallback agrees with zlib on random data', () => {
    for (let n = 1; n < 100; n += 9) {
      const data = randomBytes(n * 31);
      expect(crc32Js(data)).toBe(crc32(data));
    }
  });
});
