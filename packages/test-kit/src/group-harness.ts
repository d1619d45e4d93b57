// Shared pieces of the group tests: a continuous producer, a processing log that proves nothing was lost or
// duplicated and that no two members handled one partition at the same time.
import type { Kafka, Producer } from 'kafkajs';
import { kafka } from './kafka';
import { sleep } from './wait';

/** Produces `perTick` messages round-robin over the partitions every `intervalMs` until stopped. */
export class ContinuousProducer {
  private readonly producer: Producer;
  private running = false;
  private loop: Promise<void> | undefined;
  /** Messages produced per partition: offsets 0..n-1 of a fresh topic. */
  readonly produced: number[];

  constructor(
    private readonly topic: string,
    private readonly partitions: number,
    private readonly perTick = 24,
    private readonly intervalMs = 20,
    /** The kafkajs client to produce with (the single-node stack's by default). */
    client: Kafka = kafka,
  ) {
    this.produced = new Array<number>(partitions).fill(0);
    this.producer = client.producer();
  }

  async start(): Promise<void> {
    await this.producer.connect();
    this.running = true;
    let seq = 0;
    this.loop = (async () => {
      while (this.running) {
        const messages = Array.from({ length: this.perTick }, () => {
          const partition = seq % this.partitions;
          return { partition, value: String(seq++) };
        });
        // A send that fails (a topic that not every broker knows yet, a leader that moved) is sent again, for up
        // to 30 s; only what was acknowledged counts as produced.
        for (let failingSince: number | undefined; ;) {
          try {
            await this.producer.send({ topic: this.topic, acks: -1, messages });
            break;
          } catch (error) {
            failingSince ??= Date.now();
            if (Date.now() - failingSince > 30_000 || !this.running) throw error;
            await sleep(200);
          }
        }
        for (const m of messages) this.produced[m.partition]!++;
        await sleep(this.intervalMs);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.producer.disconnect();
  }

  get total(): number {
    return this.produced.reduce((a, b) => a + b, 0);
  }
}

/** One handler call: who handled which offsets of a partition, from `start` to `end` (wall-clock ms). */
export interface Interval {
  member: string;
  partition: number;
  start: number;
  end: number;
  /** First and last offset handled, and how many. */
  first: number;
  last: number;
  count: number;
}

/** A wall-clock time as `HH:MM:SS.mmm` UTC, for failure messages. */
export const timeOfDay = (ms: number) => new Date(ms).toISOString().slice(11, 23);

/** Who handled what, and when. */
export class ProcessingLog {
  /** partition → offset → members that handled it, in order. */
  readonly handled = new Map<number, Map<number, string[]>>();
  readonly intervals: Interval[] = [];
  count = 0;

  record(member: string, partition: number, offsets: readonly number[], start: number, end: number): void {
    let byOffset = this.handled.get(partition);
    if (!byOffset) this.handled.set(partition, (byOffset = new Map()));
    for (const offset of offsets) {
      const who = byOffset.get(offset);
      if (who) who.push(member);
      else byOffset.set(offset, [member]);
      this.count++;
    }
    this.intervals.push({
      member,
      partition,
      start,
      end,
      first: offsets[0] ?? -1,
      last: offsets.at(-1) ?? -1,
      count: offsets.length,
    });
  }

  /** Whether every produced offset has been handled. */
  complete(produced: readonly number[]): boolean {
    return produced.every((n, p) => (this.handled.get(p)?.size ?? 0) >= n);
  }

  /** Produced offsets nobody handled. */
  lost(produced: readonly number[]): Array<{ partition: number; offset: number }> {
    const lost = [];
    for (let p = 0; p < produced.length; p++) {
      for (let o = 0; o < produced[p]!; o++) if (!this.handled.get(p)?.has(o)) lost.push({ partition: p, offset: o });
    }
    return lost;
  }

  /** Offsets handled more than once. */
  duplicates(): Array<{ partition: number; offset: number; members: string[] }> {
    const dups = [];
    for (const [partition, byOffset] of this.handled) {
      for (const [offset, members] of byOffset) if (members.length > 1) dups.push({ partition, offset, members });
    }
    return dups;
  }

  /**
   * Pairs of intervals of one partition, by different members, that overlap in time: each interval against the
   * latest-ending interval of every other member that began before it. `except` leaves intervals out.
   */
  overlaps(except?: (interval: Interval) => boolean): Array<[Interval, Interval]> {
    const found: Array<[Interval, Interval]> = [];
    for (const list of this.byPartition(except).values()) {
      const latest = new Map<string, Interval>();
      for (const i of list) {
        for (const [member, other] of latest) if (member !== i.member && i.start < other.end) found.push([other, i]);
        const mine = latest.get(i.member);
        if (!mine || i.end > mine.end) latest.set(i.member, i);
      }
    }
    return found;
  }

  /**
   * The overlaps, one line per partition and pair of members: when the second began handling the partition while
   * the first still was, and what the first handled from then on (messages, offsets, times). Empty when none.
   */
  describeOverlaps(except?: (interval: Interval) => boolean): string[] {
    const pairs = new Map<string, Array<[Interval, Interval]>>();
    for (const pair of this.overlaps(except)) {
      const key = `${pair[0].partition} ${[pair[0].member, pair[1].member].sort().join(' ')}`;
      pairs.set(key, [...(pairs.get(key) ?? []), pair]);
    }
    const lines: string[] = [];
    for (const list of pairs.values()) {
      const partition = list[0]![0].partition;
      // The first moment both were at it: the later start of the earliest overlapping pair.
      const [x, y] = list.reduce((best, pair) => (pair[1].start < best[1].start ? pair : best));
      const began = y.start;
      const until = Math.max(...list.map(([i, j]) => Math.min(i.end, j.end)));
      const span = (member: string) => {
        const mine = this.intervals.filter(
          (i) => i.partition === partition && i.member === member && i.end > began && i.start <= until && i.count > 0,
        );
        const messages = mine.reduce((n, i) => n + i.count, 0);
        const first = Math.min(...mine.map((i) => i.first));
        const last = Math.max(...mine.map((i) => i.last));
        const start = Math.min(...mine.map((i) => i.start));
        const end = Math.max(...mine.map((i) => i.end));
        return `${messages} messages (offsets ${first}..${last}, ${timeOfDay(start)} to ${timeOfDay(end)})`;
      };
      lines.push(
        `overlap on partition ${partition}: ${y.member} began handling it at ${timeOfDay(began)} while ` +
          `${x.member} was (offsets ${x.first}..${x.last}, ${timeOfDay(x.start)} to ${timeOfDay(x.end)}); from then ` +
          `on ${x.member} handled ${span(x.member)} and ${y.member} handled ${span(y.member)}`,
      );
    }
    return lines;
  }

  /** The intervals of each partition, by start. */
  private byPartition(except?: (interval: Interval) => boolean): Map<number, Interval[]> {
    const byPartition = new Map<number, Interval[]>();
    for (const i of this.intervals) {
      if (except?.(i)) continue;
      const list = byPartition.get(i.partition);
      if (list) list.push(i);
      else byPartition.set(i.partition, [i]);
    }
    for (const list of byPartition.values()) list.sort((a, b) => a.start - b.start);
    return byPartition;
  }
}
