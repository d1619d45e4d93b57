// Every version of every API against the protocol guide's grammar, through an independent generic codec
// (test/helpers/grammar.ts): our encoders must produce its exact bytes for random requests, and our decoders must
// read back the random responses it encodes, tagged fields included.
import { IMPLEMENTED_VERSIONS, KAFKA_ERROR_CODES, getCodec, type ApiName } from '../src';
import { camelCase, encodeWithGrammar, loadGrammar, randomSource, randomStruct, type Struct } from './helpers/grammar';

const CASES = 25;
const grammar = loadGrammar();

/** Request fields our API accepts as null (the rest are nullable only for other reasons, such as tagged fields). */
const REQUEST_NULLABLE = new Set(['topics', 'name', 'committed_metadata', 'group_instance_id', 'cluster_id']);

function normalize(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (Buffer.isBuffer(value)) return `bytes:${value.toString('hex')}`;
  if (Array.isArray(value)) return value.map(normalize);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalize(v)]));
  }
  return value;
}

function isFlexible(api: string, version: number): boolean {
  const request = grammar.find((m) => m.api === api && m.kind === 'Request' && m.version === version)!;
  return request.headerVersion === 2;
}

describe('every version against the grammar of the protocol guide', () => {
  it('the grammar covers exactly the implemented versions', () => {
    const listed = new Set(grammar.map((m) => `${m.api} v${m.version}`));
    const implemented = new Set<string>();
    for (const [api, range] of Object.entries(IMPLEMENTED_VERSIONS)) {
      for (let v = range.minVersion; v <= range.maxVersion; v++) implemented.add(`${api} v${v}`);
    }
    expect(listed).toEqual(implemented);
  });

  for (const message of grammar) {
    const api = message.api as ApiName;
    const flexible = isFlexible(message.api, message.version);
    it(`${message.api} ${message.kind} v${message.version}${flexible ? ' (flexible)' : ''}`, () => {
      const codec = getCodec(api, message.version);
      expect(codec.flexible).toBe(flexible);
      const next = randomSource(0x5eed + message.version * 977 + message.api.length * 31 + message.kind.length);
      for (let i = 0; i < CASES; i++) {
        if (message.kind === 'Request') {
          const value = randomStruct(message.fields, next, (name) => REQUEST_NULLABLE.has(name));
          const expected = encodeWithGrammar(message, value, flexible);
          const ours = codec.encode(camelCase(value) as never);
          expect(ours.toString('hex')).toBe(expected.toString('hex'));
        } else {
          const value: Struct = randomStruct(message.fields, next, () => true);
          // UNSUPPORTED_VERSION makes the ApiVersions decoder switch to the v0 layout, on purpose.
          if (api === 'ApiVersions' && value.error_code === KAFKA_ERROR_CODES.UNSUPPORTED_VERSION) value.error_code = 0;
          const bytes = encodeWithGrammar(message, value, flexible);
          expect(normalize(codec.decode(bytes))).toMatchObject(normalize(camelCase(value)) as object);
        }
      }
    });
  }
});
