/**
 * The pure-JS fallbacks take over when a native module fails to load (no prebuilt binary for the platform).
 * The load failure is simulated by making the module throw when required, in an isolated module registry.
 */
import * as zstdNapi from 'zstd-napi';

type CrcModule = typeof import('../../src/records/crc');
type CodecsModule = typeof import('../../src/records/codecs');

/** Runs `body` with a fresh module registry in which requiring `name` throws. Native modules load lazily, so
 * everything that may load them happens inside. */
function withBrokenModule(name: string, body: () => void): void {
  try {
    jest.isolateModules(() => {
      jest.doMock(name, () => {
        throw new Error(`simulated: ${name} has no binary for this platform`);
      });
      body();
    });
  } finally {
    jest.dontMock(name);
  }
}

describe('fallbacks when a native module does not load', () => {
  it('CRC32C falls back to the slice-by-8 JS implementation', () => {
    withBrokenModule('@node-rs/crc32', () => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const crc = require('../../src/records/crc') as CrcModule;
      expect(crc.crc32cImplementation).toBe('js');
      expect(crc.crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    });
  });

  it('zstd decompresses with fzstd and refuses to compress with a typed error', () => {
    const data = Buffer.from('zstd through the pure-JS decoder '.repeat(100));
    const frame = zstdNapi.compress(data);
    withBrokenModule('zstd-napi', () => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const codecs = require('../../src/records/codecs') as CodecsModule;
      expect(codecs.zstdCodec.decompress(frame, { maxOutputBytes: 1 << 20 }).equals(data)).toBe(true);
      expect(() => codecs.zstdCodec.compress(data)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_CODEC' }));
    });
  });

  it('a missing snappy module is ERR_UNKNOWN_CODEC', () => {
    withBrokenModule('snappy', () => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const codecs = require('../../src/records/codecs') as CodecsModule;
      expect(() => codecs.snappyCodec.compress(Buffer.from('x'))).toThrow(
        expect.objectContaining({ code: 'ERR_UNKNOWN_CODEC' }),
      );
    });
  });
});
