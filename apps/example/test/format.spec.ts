/** The JSON line format and `--from` parsing: pure functions, no servers. */
import type { Message } from '@kiel/consumer';
import { parseFrom } from '../src/commands/consume';
import { Writable } from 'node:stream';
import { BatchWriter, render, renderBatchBytes, toLine } from '../src/format';

const message = (key: Buffer | null, value: Buffer | null): Message<Buffer | null> => ({
  topic: 'orders',
  partition: 3,
  offset: 42,
  timestamp: 1_700_000_000_000,
  key,
  value,
  headers: [],
});

describe('toLine', () => {
  it('keeps UTF-8 keys and values as text', () => {
    expect(toLine(message(Buffer.from('k-ü'), Buffer.from('{"a":1} ✓')), 'm1')).toEqual({
      topic: 'orders',
      partition: 3,
      offset: 42,
      key: 'k-ü',
      value: '{"a":1} ✓',
      timestamp: 1_700_000_000_000,
      member: 'm1',
    });
  });

  it('turns bytes that are not UTF-8 into base64, flagged', () => {
    const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x80]);
    const line = toLine(message(bytes, bytes));
    expect(line).toMatchObject({ key: '//4AgA==', keyEncoding: 'base64', value: '//4AgA==', encoding: 'base64' });
    expect(line).not.toHaveProperty('member');
  });

  it('keeps null as null', () => {
    expect(toLine(message(null, null))).toMatchObject({ key: null, value: null });
    expect(render(message(null, null), 'value')).toBe('null\n');
  });

  it('renders one line per message', () => {
    expect(render(message(null, Buffer.from('hello')), 'value')).toBe('hello\n');
    expect(render(message(null, Buffer.from([0xc3])), 'value')).toBe('base64:ww==\n');
    expect(JSON.parse(render(message(null, Buffer.from('x')), 'json'))).toMatchObject({ value: 'x' });
  });
});

describe('renderBatchBytes', () => {
  const values = [
    Buffer.from('plain'),
    null,
    Buffer.from('ünïcödé ✓'),
    Buffer.from([0xc3]), // a truncated sequence
    Buffer.from('a valid \uFFFD stays text'),
    Buffer.from([0xed, 0xa0, 0x80]), // an encoded surrogate
    Buffer.from([0x80, 0x41]), // starts with a continuation byte
    Buffer.from([0x41, 0xe2, 0x82]), // ends mid-sequence
    Buffer.from('null'),
    Buffer.alloc(0),
    Buffer.from('\uFEFFwith a byte order mark'),
  ];
  const messages = values.map((v) => message(null, v));
  const oneByOne = (list: typeof messages, format: 'value' | 'json', member?: string) =>
    Buffer.from(list.map((m) => render(m, format, member)).join(''));

  it.each(['value', 'json'] as const)(
    'writes the bytes of what render gives message by message (--format %s)',
    (format) => {
      for (let i = 0; i < messages.length; i++) {
        for (let j = i + 1; j <= messages.length; j++) {
          const slice = messages.slice(i, j);
          expect(renderBatchBytes(slice, slice.length, format, 'm1')).toEqual(oneByOne(slice, format, 'm1'));
        }
      }
    },
  );

  it('renders only the first count messages; valid text is copied as it is', () => {
    expect(renderBatchBytes(messages, 3, 'value').toString()).toBe('plain\nnull\nünïcödé ✓\n');
    expect(renderBatchBytes(messages, 0, 'value')).toHaveLength(0);
    expect(renderBatchBytes([messages[0]!, messages[3]!], 2, 'value').toString()).toBe('plain\nbase64:ww==\n');
  });
});

describe('BatchWriter', () => {
  const batch = (tag: string, n: number, size: number) =>
    Array.from({ length: n }, (_, i) => message(null, Buffer.from(`${tag}${i}`.padEnd(size, tag))));

  it('reuses its buffer only after the stream is done with it', async () => {
    // A stream that takes its time: what it consumes is read when it calls back, as a slow pipe would.
    const consumed: string[] = [];
    const held: Array<{ chunk: Buffer; done: () => void }> = [];
    const stream = new Writable({
      highWaterMark: 1 << 30,
      write(chunk: Buffer, _encoding, done) {
        held.push({ chunk, done });
      },
    });
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    /** Consumes everything written so far, one chunk at a time as a stream does, and lets the callbacks run. */
    const flush = async () => {
      await turn();
      while (held.length > 0) {
        const { chunk, done } = held.shift()!;
        consumed.push(chunk.toString());
        done();
        await turn();
      }
    };
    const writer = new BatchWriter(stream);
    const batches = [batch('a', 100, 100), batch('b', 100, 100), batch('c', 50, 100), batch('d', 100, 120)];
    const expected = batches.map((b) => b.map((m) => render(m, 'value')).join(''));
    writer.write(batches[0]!, 100, 'value');
    writer.write(batches[1]!, 100, 'value'); // the first write has not completed: a new buffer
    await flush();
    writer.write(batches[2]!, 100, 'value'); // reuses a completed one
    writer.write(batches[3]!, 100, 'value'); // in use, and too small anyway: a new buffer
    await flush();
    expect(consumed).toEqual(expected);
  });
});

describe('parseFrom', () => {
  it('accepts beginning, end and ISO-8601 dates', () => {
    expect(parseFrom('beginning')).toBe('beginning');
    expect(parseFrom('end')).toBe('end');
    expect(parseFrom('2026-01-02T03:04:05Z')).toEqual(new Date(Date.UTC(2026, 0, 2, 3, 4, 5)));
    expect(parseFrom('2026-01-02')).toEqual(new Date('2026-01-02'));
  });

  it.each(['yesterday', '1700000000000', '2026-13-45', 'Jan 2 2026', ''])('refuses %j naming --from', (text) => {
    expect(() => parseFrom(text)).toThrow(expect.objectContaining({ flag: '--from', code: 'ERR_USAGE' }));
  });
});
