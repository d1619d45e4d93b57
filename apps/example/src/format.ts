import { isUtf8 } from 'node:buffer';
import type { Message } from '@kiel/consumer';

// ignoreBOM: a value's leading byte order mark is part of its text, printed as it came.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A buffer as text when it is valid UTF-8, else as base64 (flagged), so any value survives a JSON line. */
function text(buffer: Buffer): { text: string; base64: boolean } {
  try {
    return { text: utf8.decode(buffer), base64: false };
  } catch {
    return { text: buffer.toString('base64'), base64: true };
  }
}

/** One message as printed by `--format json`. */
export interface MessageLine {
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  keyEncoding?: 'base64';
  value: string | null;
  encoding?: 'base64';
  timestamp: number;
  member?: string;
}

/** Shapes a message for `--format json`: one object per line. */
export function toLine(message: Message<Buffer | null>, member?: string): MessageLine {
  const line: MessageLine = {
    topic: message.topic,
    partition: message.partition,
    offset: message.offset,
    key: null,
    value: null,
    timestamp: message.timestamp,
  };
  if (message.key !== null) {
    const key = text(message.key);
    line.key = key.text;
    if (key.base64) line.keyEncoding = 'base64';
  }
  if (message.value !== null) {
    const value = text(message.value);
    line.value = value.text;
    if (value.base64) line.encoding = 'base64';
  }
  if (member !== undefined) line.member = member;
  return line;
}

/** Renders one message in the chosen format, newline included. */
export function render(message: Message<Buffer | null>, format: 'value' | 'json', member?: string): string {
  if (format === 'json') return `${JSON.stringify(toLine(message, member))}\n`;
  if (message.value === null) return 'null\n';
  const value = text(message.value);
  return `${value.base64 ? `base64:${value.text}` : value.text}\n`;
}

const NULL_LINE = Buffer.from('null\n');

/**
 * Renders the first `count` messages of a batch, as {@link render} does one by one, as the bytes `kiel consume` and
 * `kiel work` write. For `--format value` no string is made: each value's bytes and a newline are copied into one
 * buffer, and that buffer is checked once to be valid UTF-8 (`buffer.isUtf8`, SIMD). The check is exact per value: a newline cannot continue a multi-byte
 * sequence, so a value cut short or starting mid-sequence makes the whole buffer invalid. The bytes are then what
 * printing each value's text would write. A batch that fails the check (some value is not UTF-8 text) is rendered
 * message by message with the strict check, as {@link render} does, and its invalid values print as base64.
 */
export function renderBatchBytes(
  messages: readonly Message<Buffer | null>[],
  count: number,
  format: 'value' | 'json',
  member?: string,
  scratch?: Buffer,
): Buffer {
  const n = Math.min(count, messages.length);
  if (format === 'value') {
    let size = 0;
    for (let i = 0; i < n; i++) size += (messages[i]!.value?.length ?? 4) + 1;
    const out = scratch !== undefined && scratch.length >= size ? scratch.subarray(0, size) : Buffer.allocUnsafe(size);
    let pos = 0;
    for (let i = 0; i < n; i++) {
      const value = messages[i]!.value ?? NULL_LINE;
      out.set(value, pos);
      pos += value.length;
      if (value !== NULL_LINE) out[pos++] = 0x0a;
    }
    if (isUtf8(out)) return out;
  }
  let text = '';
  for (let i = 0; i < n; i++) text += render(messages[i]!, format, member);
  return Buffer.from(text);
}

/**
 * Writes rendered batches (see {@link renderBatchBytes}) to a stream, reusing one output buffer once the stream is
 * done with it. A fresh buffer per batch (a megabyte at a time) is memory outside V8's heap, and allocating it
 * fast makes V8 collect garbage often to see whether some can be freed: at 1 KiB values that cost more than the
 * copying it serves.
 */
export class BatchWriter {
  private spare: Buffer | undefined;

  constructor(private readonly stream: NodeJS.WritableStream) {}

  /** Writes the first `count` messages of a batch, as {@link renderBatchBytes} renders them. */
  write(messages: readonly Message<Buffer | null>[], count: number, format: 'value' | 'json', member?: string): void {
    const scratch = this.spare;
    this.spare = undefined;
    const out = renderBatchBytes(messages, count, format, member, scratch);
    if (scratch !== undefined && out.buffer !== scratch.buffer) this.spare = scratch; // not used this time
    if (out.length === 0) return;
    const reusable =
      out.buffer === scratch?.buffer ||
      (out.byteOffset === 0 && out.buffer.byteLength === out.length && out.length <= MAX_SPARE);
    if (!reusable) {
      this.stream.write(out);
      return;
    }
    const whole = out.buffer === scratch?.buffer ? scratch : out;
    // In use until the stream calls back: at once for a file or /dev/null, later for a pipe that is full.
    this.stream.write(out, () => {
      if (this.spare === undefined || this.spare.length < whole.length) this.spare = whole;
    });
  }
}

/** Largest output buffer kept for reuse. */
const MAX_SPARE = 64 * 1024 * 1024;

/** Formats rows as an aligned text table. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}
