/**
 * Checksums of the record formats: CRC32C (Castagnoli) for RecordBatch v2, CRC32 (IEEE) for the legacy message
 * sets. The native implementations are used when they load; the pure-JS slice-by-8 fallbacks keep the package
 * working where a prebuilt binary is missing.
 */
import * as zlib from 'node:zlib';

type Crc = (data: Uint8Array, initial?: number) => number;

/** Eight 256-entry tables for slice-by-8 of a reflected polynomial. */
function sliceBy8Tables(reflectedPolynomial: number): Int32Array {
  const table = new Int32Array(256 * 8);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ reflectedPolynomial : c >>> 1;
    table[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = table[n];
    for (let k = 1; k < 8; k++) {
      c = table[c & 0xff] ^ (c >>> 8);
      table[k * 256 + n] = c;
    }
  }
  return table;
}

function sliceBy8(reflectedPolynomial: number): Crc {
  const t = sliceBy8Tables(reflectedPolynomial);
  return (data, initial = 0) => {
    let crc = ~initial;
    let i = 0;
    const end8 = data.length - 7;
    for (; i < end8; i += 8) {
      const a = crc ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
      crc =
        t[1792 + (a & 0xff)] ^
        t[1536 + ((a >>> 8) & 0xff)] ^
        t[1280 + ((a >>> 16) & 0xff)] ^
        t[1024 + (a >>> 24)] ^
        t[768 + data[i + 4]] ^
        t[512 + data[i + 5]] ^
        t[256 + data[i + 6]] ^
        t[data[i + 7]];
    }
    for (; i < data.length; i++) crc = t[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
    return ~crc >>> 0;
  };
}

/** Pure-JS CRC32C (slice-by-8). Exported for tests and for hosts without the native module. */
export const crc32cJs: Crc = sliceBy8(0x82f63b78);

/** Pure-JS CRC32 (IEEE, slice-by-8), the fallback where `zlib.crc32` is missing (Node before 20.15). */
export const crc32Js: Crc = sliceBy8(0xedb88320);

function loadNativeCrc32c(): Crc | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const native = require('@node-rs/crc32') as { crc32c(input: Uint8Array, initial?: number | null): number };
    if (native.crc32c(Buffer.from('123456789')) !== 0xe3069283) return undefined;
    return (data, initial = 0) => native.crc32c(data, initial);
  } catch {
    return undefined;
  }
}

const nativeCrc32c = loadNativeCrc32c();

/** Which CRC32C implementation is in use: `native` (@node-rs/crc32) or `js` (slice-by-8 fallback). */
export const crc32cImplementation: 'native' | 'js' = nativeCrc32c ? 'native' : 'js';

/**
 * CRC32C (Castagnoli) of `data`, as an unsigned 32-bit number. `initial` continues a previous checksum.
 *
 * @example crc32c(Buffer.from('123456789')) === 0xe3069283
 */
export const crc32c: Crc = nativeCrc32c ?? crc32cJs;

const zlibCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/** CRC32 (IEEE) of `data`, as an unsigned 32-bit number; `zlib.crc32` where Node has it. */
export const crc32: Crc = zlibCrc32 ? (data, initial = 0) => zlibCrc32(data, initial) >>> 0 : crc32Js;
