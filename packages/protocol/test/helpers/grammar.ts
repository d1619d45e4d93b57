// An independent, slow, generic codec driven by the Kafka protocol guide's grammar text (the same text that sits on
// top of each src/apis/<api>/v<N>.ts). It shares no code with the package: plain Buffer operations, snake_case
// field names exactly as in the grammar. Tests use it to produce exact bytes for every version of every API.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A field of a struct, as the grammar declares it. */
export interface GrammarField {
  name: string;
  /** Primitive type name, or 'STRUCT' when `fields` is set. */
  type: string;
  fields?: GrammarField[];
  array: 'none' | 'classic' | 'compact';
  nullableArray: boolean;
  tag?: number;
}

/** One request or response of one version. */
export interface GrammarMessage {
  api: string;
  kind: 'Request' | 'Response';
  version: number;
  headerVersion: number;
  fields: GrammarField[];
}

export type Value = null | boolean | number | bigint | string | Buffer | Value[] | { [field: string]: Value };
export type Struct = { [field: string]: Value };

const GRAMMAR_FILE = path.join(__dirname, '..', '..', 'scripts', 'kafka-4.4.0-grammar.txt');

interface Line {
  indent: number;
  name: string;
  tag?: number;
  rhs: string;
}

function parseFieldList(
  list: string,
): { name: string; array: GrammarField['array']; nullable: boolean; tag?: number }[] {
  return list
    .replace(/<tag: (\d+)>/g, '<tag:$1>')
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map((token) => {
      const tagMatch = /<tag:(\d+)>$/.exec(token);
      const bare = token.replace(/<tag:\d+>$/, '');
      const nullable = bare.startsWith('?');
      const inner = nullable ? bare.slice(1) : bare;
      if (inner.startsWith('[')) return { name: inner.slice(1, -1), array: 'classic', nullable, tag: tagNum(tagMatch) };
      if (inner.startsWith('(')) return { name: inner.slice(1, -1), array: 'compact', nullable, tag: tagNum(tagMatch) };
      return { name: inner, array: 'none', nullable: false, tag: tagNum(tagMatch) };
    });
}

function tagNum(match: RegExpExecArray | null): number | undefined {
  return match ? Number(match[1]) : undefined;
}

function buildStruct(list: string, children: Line[], start: number, indent: number): GrammarField[] {
  // Children of this struct are the lines at `indent` until the indentation drops below it.
  const mine: { line: Line; index: number }[] = [];
  for (let i = start; i < children.length && children[i].indent >= indent; i++) {
    if (children[i].indent === indent) mine.push({ line: children[i], index: i });
  }
  return parseFieldList(list).map((declared) => {
    const found = mine.find((m) => m.line.name === declared.name && m.line.tag === declared.tag);
    if (!found) throw new Error(`grammar: no definition for ${declared.name}`);
    const { line, index } = found;
    const field: GrammarField = {
      name: declared.name,
      type: 'STRUCT',
      array: declared.array,
      nullableArray: declared.nullable,
      tag: declared.tag,
    };
    const struct = /^\{(.*)\}$/.exec(line.rhs);
    if (struct) field.fields = buildStruct(struct[1], children, index + 1, indent + 2);
    else field.type = line.rhs;
    return field;
  });
}

/**
 * Tagged fields that are arrays. Kafka's HTML rendering of the grammar drops the array brackets of tagged fields;
 * the message definitions (ApiVersionsResponse.json: "[]SupportedFeatureKey", "[]FinalizedFeatureKey") and the
 * captured broker response say they are compact arrays.
 */
const TAGGED_ARRAYS = new Set(['ApiVersions.supported_features', 'ApiVersions.finalized_features']);

function markTaggedArrays(api: string, fields: GrammarField[]): GrammarField[] {
  for (const field of fields) {
    if (field.tag !== undefined && TAGGED_ARRAYS.has(`${api}.${field.name}`)) field.array = 'compact';
  }
  return fields;
}

/** Parses kafka-4.4.0-grammar.txt. */
export function loadGrammar(): GrammarMessage[] {
  const text = fs.readFileSync(GRAMMAR_FILE, 'utf8');
  return text
    .split(/\n(?=\w+ (?:Request|Response) \(Version)/)
    .filter((block) => block.trim())
    .map((block) => {
      const [first, ...rest] = block.trimEnd().split('\n');
      const head = /^(\w+) (Request|Response) \(Version: (\d+)\) => \{(.*)\}$/.exec(first);
      if (!head) throw new Error(`grammar: cannot parse ${first}`);
      const headerLine = rest.pop()!;
      const headerVersion = Number(/header version: (\d)/.exec(headerLine)![1]);
      const lines: Line[] = rest.map((raw) => {
        const match = /^( *)(\w+)(?:<tag: (\d+)>)? => (.*)$/.exec(raw);
        if (!match) throw new Error(`grammar: cannot parse line ${raw}`);
        return {
          indent: match[1].length,
          name: match[2],
          tag: match[3] === undefined ? undefined : Number(match[3]),
          rhs: match[4],
        };
      });
      return {
        api: head[1],
        kind: head[2] as 'Request' | 'Response',
        version: Number(head[3]),
        headerVersion,
        fields: markTaggedArrays(head[1], buildStruct(head[4], lines, 0, 2)),
      };
    });
}

class Out {
  private chunks: Buffer[] = [];
  push(b: Buffer): void {
    this.chunks.push(b);
  }
  int(size: 1 | 2 | 4, value: number): void {
    const b = Buffer.alloc(size);
    if (size === 1) b.writeInt8(value);
    else if (size === 2) b.writeInt16BE(value);
    else b.writeInt32BE(value);
    this.push(b);
  }
  int64(value: bigint | number): void {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(BigInt(value));
    this.push(b);
  }
  uvarint(value: number): void {
    const bytes: number[] = [];
    let rest = value;
    while (rest >= 0x80) {
      bytes.push((rest % 0x80) | 0x80);
      rest = Math.floor(rest / 0x80);
    }
    bytes.push(rest);
    this.push(Buffer.from(bytes));
  }
  concat(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function writePrimitive(out: Out, type: string, value: Value): void {
  switch (type) {
    case 'INT8':
      return out.int(1, value as number);
    case 'INT16':
      return out.int(2, value as number);
    case 'INT32':
      return out.int(4, value as number);
    case 'INT64':
      return out.int64(value as number | bigint);
    case 'BOOLEAN':
      return out.push(Buffer.from([value ? 1 : 0]));
    case 'UUID':
      return out.push(Buffer.from((value as string).replace(/-/g, ''), 'hex'));
    case 'STRING':
    case 'NULLABLE_STRING': {
      if (value === null) return out.int(2, -1);
      const b = Buffer.from(value as string, 'utf8');
      out.int(2, b.length);
      return out.push(b);
    }
    case 'COMPACT_STRING':
    case 'COMPACT_NULLABLE_STRING': {
      if (value === null) return out.uvarint(0);
      const b = Buffer.from(value as string, 'utf8');
      out.uvarint(b.length + 1);
      return out.push(b);
    }
    case 'BYTES':
    case 'NULLABLE_BYTES':
    case 'NULLABLE_RECORDS': {
      if (value === null) return out.int(4, -1);
      out.int(4, (value as Buffer).length);
      return out.push(value as Buffer);
    }
    case 'COMPACT_BYTES':
    case 'COMPACT_NULLABLE_BYTES':
    case 'COMPACT_NULLABLE_RECORDS': {
      if (value === null) return out.uvarint(0);
      out.uvarint((value as Buffer).length + 1);
      return out.push(value as Buffer);
    }
    default:
      throw new Error(`grammar: unknown type ${type}`);
  }
}

function writeValue(out: Out, field: GrammarField, value: Value, flexible: boolean): void {
  const one = (item: Value) =>
    field.fields ? writeStruct(out, field.fields, item as Struct, flexible) : writePrimitive(out, field.type, item);
  if (field.array === 'none') return one(value);
  if (value === null) {
    if (field.array === 'compact') out.uvarint(0);
    else out.int(4, -1);
    return;
  }
  const items = value as Value[];
  if (field.array === 'compact') out.uvarint(items.length + 1);
  else out.int(4, items.length);
  items.forEach(one);
}

function writeStruct(out: Out, fields: GrammarField[], value: Struct, flexible: boolean): void {
  const tagged: { tag: number; bytes: Buffer }[] = [];
  for (const field of fields) {
    if (field.tag !== undefined) {
      // Tagged fields are optional: written only when the value is present.
      const present = value[field.name];
      if (present === undefined || present === null) continue;
      const sub = new Out();
      writeValue(sub, field, present, flexible);
      tagged.push({ tag: field.tag, bytes: sub.concat() });
      continue;
    }
    writeValue(out, field, value[field.name], flexible);
  }
  if (!flexible) return;
  out.uvarint(tagged.length);
  for (const { tag, bytes } of tagged.sort((a, b) => a.tag - b.tag)) {
    out.uvarint(tag);
    out.uvarint(bytes.length);
    out.push(bytes);
  }
}

/** Encodes a body from snake_case values with the grammar alone. */
export function encodeWithGrammar(message: GrammarMessage, value: Struct, flexible: boolean): Buffer {
  const out = new Out();
  writeStruct(out, message.fields, value, flexible);
  return out.concat();
}

/** A deterministic random source (xorshift32). */
export function randomSource(seed: number): () => number {
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

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz-._0123456789é€';

/** Random values for every field of a message; `nullable(name)` says whether a nullable field may be null. */
export function randomStruct(fields: GrammarField[], next: () => number, nullable: (name: string) => boolean): Struct {
  const int = (bits: number) => Math.floor(next() * 2 ** bits) - 2 ** (bits - 1);
  const primitive = (field: GrammarField): Value => {
    switch (field.type) {
      case 'INT8':
        return int(8);
      case 'INT16':
        return int(16);
      case 'INT32':
        return int(32);
      case 'INT64':
        return Math.floor((next() - 0.5) * 2 ** 53);
      case 'BOOLEAN':
        return next() < 0.5;
      case 'UUID':
        return [8, 4, 4, 4, 12]
          .map((n) => Array.from({ length: n }, () => '0123456789abcdef'[Math.floor(next() * 16)]).join(''))
          .join('-');
      case 'STRING':
      case 'COMPACT_STRING':
      case 'NULLABLE_STRING':
      case 'COMPACT_NULLABLE_STRING': {
        if (field.type.includes('NULLABLE') && nullable(field.name) && next() < 0.3) return null;
        return Array.from(
          { length: Math.floor(next() * 12) },
          () => ALPHABET[Math.floor(next() * ALPHABET.length)],
        ).join('');
      }
      default: {
        if (field.type.includes('NULLABLE') && next() < 0.3) return null;
        return Buffer.from(Array.from({ length: Math.floor(next() * 24) }, () => Math.floor(next() * 256)));
      }
    }
  };
  const struct: Struct = {};
  for (const field of fields) {
    if (field.tag !== undefined && next() < 0.5) continue;
    const one = (): Value => (field.fields ? randomStruct(field.fields, next, nullable) : primitive(field));
    if (field.array === 'none') struct[field.name] = one();
    else if (field.nullableArray && nullable(field.name) && next() < 0.25) struct[field.name] = null;
    else struct[field.name] = Array.from({ length: Math.floor(next() * 4) }, one);
  }
  return struct;
}

/** snake_case -> camelCase, recursively (Buffers and scalars stay). */
export function camelCase(value: Value | undefined): unknown {
  if (Array.isArray(value)) return value.map(camelCase);
  if (value === null || value === undefined || typeof value !== 'object' || Buffer.isBuffer(value)) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, v]) => [key.replace(/_(\w)/g, (_, c: string) => c.toUpperCase()), camelCase(v)]),
  );
}
