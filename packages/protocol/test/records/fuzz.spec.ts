import { isKafkaProtocolError } from '../../src/errors';
import { CompressionType, decodeRecords, encodeMessageSet, encodeRecordBatch } from '../../src/records';

/** mulberry32: a small seeded PRNG, so a failure reproduces. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = 0x6b69656c;
const BUDGET_MS = Number(process.env.FUZZ_MS ?? 3000);

const seeds: Buffer[] = [
  ...[0, 1, 2, 3, 4].map((compression) =>
    encodeRecordBatch({
      baseOffset: 10,
      compression,
      producerId: 3,
      isTransactional: compression === 1,
      records: [
        {
          key: 'key',
          value: 'value-'.repeat(10),
          headers: [
            { key: 'h', value: 'v' },
            { key: 'n', value: null },
          ],
        },
        { key: null, value: null, timestamp: 5 },
      ],
    }),
  ),
  encodeMessageSet({ magic: 0, messages: [{ key: 'a', value: 'b' }, { value: 'c' }] }),
  encodeMessageSet({
    magic: 1,
    compression: CompressionType.GZIP,
    baseOffset: 5,
    messages: [{ value: 'x' }, { value: 'y' }],
  }),
  encodeMessageSet({ magic: 1, compression: CompressionType.SNAPPY, messages: [{ value: 'z'.repeat(40) }] }),
];

function mutate(random: () => number, input: Buffer): Buffer {
  const out = Buffer.from(input);
  const kind = Math.floor(random() * 4);
  if (kind === 0) {
    const flips = 1 + Math.floor(random() * 4);
    for (let i = 0; i < flips; i++) out[Math.floor(random() * out.length)] ^= 1 << Math.floor(random() * 8);
  } else if (kind === 1) {
    out[Math.floor(random() * out.length)] = Math.floor(random() * 256);
  } else if (kind === 2) {
    // A length or count field set to an extreme value.
    const at = [8, 57, 61, 12, 20, 24][Math.floor(random() * 6)];
    if (at + 4 <= out.length) out.writeInt32BE([-1, -2, 0x7fffffff, 0, 1, 100_000][Math.floor(random() * 6)], at);
  } else {
    return Buffer.concat([
      out.subarray(0, Math.floor(random() * out.length)),
      Buffer.from([Math.floor(random() * 256)]),
    ]);
  }
  return out;
}

describe('fuzz: random and mutated record bytes only ever raise KafkaProtocolError', () => {
  it(`runs for ${BUDGET_MS} ms with seed ${SEED}`, () => {
    const random = prng(SEED);
    const deadline = Date.now() + BUDGET_MS;
    const seen = new Set<string>();
    let runs = 0;
    while (Date.now() < deadline) {
      let input: Buffer;
      if (random() < 0.2) {
        input = Buffer.from(Array.from({ length: Math.floor(random() * 200) }, () => Math.floor(random() * 256)));
        if (input.length > 17 && random() < 0.5) input[16] = Math.floor(random() * 3); // a plausible magic
      } else {
        const a = seeds[Math.floor(random() * seeds.length)];
        const b = seeds[Math.floor(random() * seeds.length)];
        input = mutate(random, random() < 0.5 ? a : Buffer.concat([a, b]));
      }
      for (const verifyCrc of [true, false]) {
        try {
          const result = decodeRecords(input, {
            verifyCrc,
            isolationLevel: 'read_committed',
            abortedTransactions: [{ producerId: 3, firstOffset: 0 }],
          });
          expect(result.bytesConsumed).toBeLessThanOrEqual(input.length);
          seen.add('ok');
        } catch (err) {
          if (!isKafkaProtocolError(err))
            throw new Error(`non-protocol error for input ${input.toString('hex')}: ${String(err)}`);
          expect(typeof err.offset).toBe('number');
          seen.add(err.code);
        }
      }
      runs++;
    }
    expect(runs).toBeGreaterThan(500);
    // The mutations reach the interesting failures, not only one kind.
    expect([...seen]).toEqual(
      expect.arrayContaining(['ok', 'ERR_CRC_MISMATCH', 'ERR_UNKNOWN_MAGIC', 'ERR_DECOMPRESSION']),
    );
  });
});
