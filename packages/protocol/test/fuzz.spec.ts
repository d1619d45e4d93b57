// Fuzz: random and mutated frames go to every response decoder of every version. Only KafkaProtocolError may come
// out, and every decode must return promptly. Fixed seed, bounded work (a few seconds on a busy 2-core machine).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IMPLEMENTED_VERSIONS, decodeResponse, getCodec, isKafkaProtocolError, type ApiName } from '../src';
import brokerResponses from './fixtures/broker-responses.json';

const SEED = 0x6b69656c; // "kiel"
const CASES_PER_CODEC = 600;
const SLOW_DECODE_MS = 250;

/** xorshift32: deterministic, so a failure reproduces from the seed. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 0x1_0000_0000;
  };
}

const KAFKAJS_NAMES: Record<string, ApiName> = {
  apiVersions: 'ApiVersions',
  metadata: 'Metadata',
  findCoordinator: 'FindCoordinator',
  listOffsets: 'ListOffsets',
  fetch: 'Fetch',
  offsetFetch: 'OffsetFetch',
  offsetCommit: 'OffsetCommit',
  saslAuthenticate: 'SaslAuthenticate',
};

/** Valid response bodies per API (any version), to mutate. */
function corpus(): Map<ApiName, Buffer[]> {
  const byApi = new Map<ApiName, Buffer[]>();
  const add = (api: ApiName, body: Buffer) => byApi.set(api, [...(byApi.get(api) ?? []), body]);
  const dir = path.join(__dirname, 'fixtures', 'kafkajs');
  for (const file of fs.readdirSync(dir)) {
    add(KAFKAJS_NAMES[file.split('_')[0]], Buffer.from(JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')).data));
  }
  for (const fixture of Object.values(brokerResponses.responses)) {
    const api = fixture.api as ApiName;
    // Strip the response header (v0: correlation id; v1: plus one empty tagged-field byte).
    const headerSize = getCodec(api, fixture.version).responseHeaderVersion === 1 ? 5 : 4;
    add(api, Buffer.from(fixture.hex, 'hex').subarray(headerSize));
  }
  add('SaslHandshake', Buffer.from('0000' + '00000002' + '0005504c41494e' + '000d534352414d2d5348412d323536', 'hex'));
  return byApi;
}

const INTERESTING_INT32 = [0, 1, -1, -2, 0x7fffffff, -0x80000000, 0x10000, 255];

function mutate(source: Buffer, next: () => number): Buffer {
  const pick = (n: number) => Math.floor(next() * n);
  let out = Buffer.from(source);
  const steps = 1 + pick(4);
  for (let i = 0; i < steps; i++) {
    const kind = pick(5);
    if (out.length === 0) out = Buffer.from([pick(256)]);
    const at = pick(out.length);
    if (kind === 0) out[at] = pick(256);
    else if (kind === 1) out = out.subarray(0, at);
    else if (kind === 2 && out.length - at >= 4)
      out.writeInt32BE(INTERESTING_INT32[pick(INTERESTING_INT32.length)], at);
    else if (kind === 3)
      out = Buffer.concat([out.subarray(0, at), Buffer.from([pick(256), pick(256)]), out.subarray(at)]);
    else out[at] ^= 1 << pick(8);
  }
  return out;
}

function decodeOnlyThrowsTyped(decode: () => unknown, describeInput: () => string): void {
  const started = performance.now();
  try {
    decode();
  } catch (err) {
    if (!isKafkaProtocolError(err)) {
      throw new Error(`${describeInput()} threw a non-protocol error: ${String(err)}`, { cause: err });
    }
  }
  const elapsed = performance.now() - started;
  if (elapsed > SLOW_DECODE_MS) throw new Error(`${describeInput()} took ${elapsed.toFixed(0)} ms`);
}

describe('fuzzing every response decoder', () => {
  const seeds = corpus();

  for (const api of Object.keys(IMPLEMENTED_VERSIONS) as ApiName[]) {
    it(`${api}: random and mutated frames only raise KafkaProtocolError`, () => {
      const { minVersion, maxVersion } = IMPLEMENTED_VERSIONS[api];
      const valid = seeds.get(api) ?? [];
      expect(valid.length).toBeGreaterThan(0);
      for (let version = minVersion; version <= maxVersion; version++) {
        const next = random(SEED + version * 131 + api.length);
        const codec = getCodec(api, version);
        let typedErrors = 0;
        for (let i = 0; i < CASES_PER_CODEC; i++) {
          const input =
            i % 4 === 0
              ? Buffer.from(Array.from({ length: Math.floor(next() * 64) }, () => Math.floor(next() * 256)))
              : mutate(valid[i % valid.length], next);
          const describeInput = () => `${api} v${version} case ${i} (${input.toString('hex')})`;
          decodeOnlyThrowsTyped(() => codec.decode(input), describeInput);
          decodeOnlyThrowsTyped(() => decodeResponse(api, version, input), describeInput);
          try {
            codec.decode(input);
          } catch {
            typedErrors++;
          }
        }
        // The fuzzer must actually reach the error paths.
        expect(typedErrors).toBeGreaterThan(CASES_PER_CODEC / 10);
      }
    });
  }
});
