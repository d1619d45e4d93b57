/**
 * MurmurHash3 (x86, 32-bit) over the UTF-8 bytes of a string. Integer arithmetic only (`Math.imul`, `>>>`), so
 * every process on every platform computes the same value; the published test vectors pin it.
 */
const encoder = new TextEncoder();
let scratch = new Uint8Array(256);

/** Finalisation mix of MurmurHash3: a bijection on 32 bits with full avalanche. */
export function fmix32(value: number): number {
  let h = value;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** MurmurHash3_x86_32 of `bytes[0..length)`. */
export function murmur3Bytes(bytes: Uint8Array, length: number, seed: number): number {
  let h = seed >>> 0;
  const tail = length & ~3;
  for (let i = 0; i < tail; i += 4) {
    let k = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const rest = length & 3;
  if (rest > 0) {
    let k = bytes[tail];
    if (rest > 1) k ^= bytes[tail + 1] << 8;
    if (rest > 2) k ^= bytes[tail + 2] << 16;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  return fmix32(h ^ length);
}

/** Writes the UTF-8 encoding of `text` into a shared scratch buffer and returns it with its length. */
export function utf8(text: string): { bytes: Uint8Array; length: number } {
  // Three bytes per UTF-16 code unit is the most UTF-8 can need.
  if (scratch.length < text.length * 3) scratch = new Uint8Array(text.length * 3);
  let ascii = true;
  for (let i = 0; i < text.length && ascii; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) scratch[i] = code;
    else ascii = false;
  }
  const length = ascii ? text.length : encoder.encodeInto(text, scratch).written;
  return { bytes: scratch, length };
}

/** MurmurHash3_x86_32 of the UTF-8 encoding of `text` (lone surrogates encode as U+FFFD). */
export function murmur3(text: string, seed: number): number {
  const { bytes, length } = utf8(text);
  return murmur3Bytes(bytes, length, seed);
}
