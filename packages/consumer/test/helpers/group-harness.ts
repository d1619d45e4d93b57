// Shared pieces of the group tests: a continuous producer, a processing log that proves nothing was lost or
// duplicated and that no two members handled one partition at the same time, and a wait helper.
import { kafka } from './kafka';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `condition` every 20 ms until it holds, or fails after `timeoutMs` with `what`. */
export async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A promise the test opens when it chooses: holds a step (a backend call, a hook) at a chosen point. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

/** Produces `perTick` messages round-robin over the partitions every `intervalMs` until stopped. */
export class ContinuousProducer {
  private readonly producer = kafka.producer();
  private running = false;
  private loop: Promise<void> | undefined;
  /** Messages produced per partition: offsets 0..n-1 of a fresh topic. */
  readonly produced: number[];

  constructor(
    private readonly topic: string,
    private readonly partitions: number,
    private readonly perTick = 24,
    private readonly intervalMs = 20,
  ) {
    this.produced = new Array<number>(partitions).fill(0);
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
        await this.producer.send({ topic: this.topic, acks: -1, messages });
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

interface Interval {
  member: string;
  partition: number;
  start: number;
  end: number;
}

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
    this.intervals.push({ member, partition, start, end });
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

  /** Pairs of intervals of one partition, by different members, that overlap in time. */
  overlaps(): Array<[Interval, Interval]> {
    const found: Array<[Interval, Interval]> = [];
    const byPartition = new Map<number, Interval[]>();
    for (const i of this.intervals) byPartition.set(i.partition, [...(byPartition.get(i.partition) ?? []), i]);
    for (const list of byPartition.values()) {
      list.sort((a, b) => a.start - b.start);
      let latest: Interval | undefined;
      for (const i of list) {
        if (latest && latest.member !== i.member && i.start < latest.end) found.push([latest, i]);
        if (!latest || i.end > latest.end) latest = i;
      }
    }
    return found;
  }
}
