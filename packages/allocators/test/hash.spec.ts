import { murmur3 } from '../src/hash';

/**
 * MurmurHash3_x86_32 values computed independently with the Python `mmh3` package (C implementation by the
 * algorithm's author), over the UTF-8 bytes of each string, unsigned. The first eight are also the commonly
 * published test vectors.
 */
const VECTORS: Array<[string, number, number]> = [
  ['', 0, 0x0],
  ['', 1, 0x514e28b7],
  ['', 0xffffffff, 0x81f16f39],
  ['test', 0, 0xba6bd213],
  ['abc', 0, 0xb3dd93fa],
  ['Hello, world!', 0x9747b28c, 0x24884cba],
  ['The quick brown fox jumps over the lazy dog', 0x9747b28c, 0x2fa826cd],
  ['ππππππππ', 0x9747b28c, 0xd58063c1],
  ['orders:7', 0x70617274, 0xe007a1cd],
  ['host-1:4242:c0ffee', 0x6b69656c, 0x9e59073f],
  ['日本語のトピック', 7, 0xe15620c0],
];

describe('murmur3', () => {
  it.each(VECTORS)('%j with seed %d', (text, seed, expected) => {
    expect(murmur3(text, seed)).toBe(expected);
  });
});
