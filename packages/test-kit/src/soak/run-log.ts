// The record of one soak run, as files in its directory, and the group's state rebuilt from them.
//
//   run.json                       the run's settings (backend, seed, session timeout, members, stack)
//   events.jsonl                   what the soak did, one JSON object a line: a member process spawned, signalled or
//                                  exited, a fault with its start and end, partitions added, the final end offsets
//   members/<incarnation>.log      one line per fact a member process reported (the lines of member-program.js),
//                                  each prefixed with the wall-clock ms at which the soak read it
//
// An incarnation is one process of a member: `m3.2` is the second process of member m3 (after a restart). The
// checker treats incarnations as distinct members: a killed process's handling ends with it.
import * as fs from 'node:fs';
import * as path from 'node:path';

export type FaultKind =
  | 'graceful-restart'
  | 'kill-restart'
  | 'stop-member'
  | 'store-leader-kill'
  | 'store-freeze'
  | 'store-quorum-loss'
  | 'broker-kill'
  | 'leadership-move'
  | 'member-cut-off'
  | 'partitions-added';

export const FAULT_KINDS: readonly FaultKind[] = [
  'graceful-restart',
  'kill-restart',
  'stop-member',
  'store-leader-kill',
  'store-freeze',
  'store-quorum-loss',
  'broker-kill',
  'leadership-move',
  'member-cut-off',
  'partitions-added',
];

export interface RunSettings {
  readonly backend: 'zk' | 'etcd';
  readonly seed: number;
  readonly minutes: number;
  readonly sessionTimeout: number;
  readonly topic: string;
  readonly group: string;
  readonly partitions: number;
  readonly members: readonly string[];
  readonly stack: string;
  readonly startedAt: number;
}

export type RunEvent =
  | { type: 'spawn'; at: number; member: string; incarnation: string; pid: number; handler: string }
  | { type: 'signal'; at: number; incarnation: string; signal: 'SIGSTOP' | 'SIGCONT' | 'SIGKILL' | 'SIGTERM' }
  | { type: 'exit'; at: number; incarnation: string; code: number | null; signal: string | null; expected: boolean }
  | {
      type: 'fault';
      id: number;
      kind: FaultKind;
      target: string;
      start: number;
      end: number;
      detail: string;
      /** Incarnations this fault ended by SIGKILL (crashes it explains). */
      killed?: string[];
    }
  | { type: 'partitions'; at: number; count: number }
  | { type: 'produced'; at: number; perPartition: number[] }
  | { type: 'final'; at: number; endOffsets: number[] };

export type FaultEvent = Extract<RunEvent, { type: 'fault' }>;

/** A member's report, as read: its kind, the fields after it, and when the soak read it. */
export interface MemberLine {
  readonly at: number;
  readonly kind: string;
  readonly rest: readonly string[];
}

/** Appends to a run directory as the run goes. */
export class RunWriter {
  private readonly events: number;
  private readonly members = new Map<string, number>();

  constructor(readonly dir: string) {
    fs.mkdirSync(path.join(dir, 'members'), { recursive: true });
    this.events = fs.openSync(path.join(dir, 'events.jsonl'), 'a');
  }

  settings(settings: RunSettings): void {
    fs.writeFileSync(path.join(this.dir, 'run.json'), JSON.stringify(settings, null, 2) + '\n');
  }

  event(event: RunEvent): void {
    fs.writeSync(this.events, JSON.stringify(event) + '\n');
  }

  memberLine(incarnation: string, at: number, line: string): void {
    let fd = this.members.get(incarnation);
    if (fd === undefined) {
      fd = fs.openSync(path.join(this.dir, 'members', `${incarnation}.log`), 'a');
      this.members.set(incarnation, fd);
    }
    fs.writeSync(fd, `${Math.round(at)} ${line}\n`);
  }

  close(): void {
    fs.closeSync(this.events);
    for (const fd of this.members.values()) fs.closeSync(fd);
    this.members.clear();
  }
}

/** What one incarnation reported that the group's state depends on (handled messages are kept elsewhere). */
export interface IncarnationView {
  readonly name: string;
  readonly member: string;
  spawnedAt: number;
  exitedAt: number | undefined;
  /** Wall-clock ms of SIGSTOP/SIGCONT, in order. */
  readonly stops: Array<{ at: number; stopped: boolean }>;
  /** Each generation it applied: when, which, and what it then owned. */
  readonly assigned: Array<{ at: number; generation: number; partitions: string[] }>;
  /** fenced, unfenced, lost, rejoined. */
  readonly events: Array<{ at: number; event: string }>;
  /** Every commit: partition, next offset to read, when. */
  readonly commits: Array<{ at: number; partition: number; offset: number }>;
}

/** Parses one member line as written by RunWriter. */
export function parseMemberLine(text: string): MemberLine | undefined {
  const parts = text.split(' ');
  if (parts.length < 2) return undefined;
  return { at: Number(parts[0]), kind: parts[1]!, rest: parts.slice(2) };
}

/**
 * The group's state over time, built from the events and the members' lines (live, by the soak, or from the files,
 * by the checker), and the convergence rule: every running, unstopped incarnation applied one and the same
 * generation, is not fenced, has not lost its session since, owns at least one partition (when there are enough),
 * and together they own every partition of the topic exactly once.
 */
export class GroupTimeline {
  readonly incarnations = new Map<string, IncarnationView>();
  /** Partition count of the topic over time. */
  readonly partitionCounts: Array<{ at: number; count: number }> = [];

  constructor(
    readonly topic: string,
    initialPartitions: number,
    startedAt: number,
  ) {
    this.partitionCounts.push({ at: startedAt, count: initialPartitions });
  }

  onEvent(event: RunEvent): void {
    switch (event.type) {
      case 'spawn':
        this.incarnations.set(event.incarnation, {
          name: event.incarnation,
          member: event.member,
          spawnedAt: event.at,
          exitedAt: undefined,
          stops: [],
          assigned: [],
          events: [],
          commits: [],
        });
        break;
      case 'signal': {
        const view = this.incarnations.get(event.incarnation);
        if (view && (event.signal === 'SIGSTOP' || event.signal === 'SIGCONT')) {
          view.stops.push({ at: event.at, stopped: event.signal === 'SIGSTOP' });
        }
        break;
      }
      case 'exit': {
        const view = this.incarnations.get(event.incarnation);
        if (view) view.exitedAt = event.at;
        break;
      }
      case 'partitions':
        this.partitionCounts.push({ at: event.at, count: event.count });
        break;
      default:
        break;
    }
  }

  onLine(incarnation: string, line: MemberLine): void {
    const view = this.incarnations.get(incarnation);
    if (!view) return;
    switch (line.kind) {
      case 'ASSIGNED': {
        // ASSIGNED <generation> <list> <wall-clock>; the list may be empty.
        const at = Number(line.rest[2] ?? line.at);
        view.assigned.push({
          at: Number.isFinite(at) ? at : line.at,
          generation: Number(line.rest[0]),
          partitions: line.rest[1] ? line.rest[1].split(',') : [],
        });
        break;
      }
      case 'EVENT':
        view.events.push({ at: Number(line.rest[1]), event: line.rest[0]! });
        break;
      case 'COMMITTED': {
        const at = Number(line.rest[2] ?? line.at);
        view.commits.push({ at, partition: Number(line.rest[0]), offset: Number(line.rest[1]) });
        break;
      }
      default:
        break;
    }
  }

  partitionsAt(t: number): number {
    let count = this.partitionCounts[0]!.count;
    for (const p of this.partitionCounts) if (p.at <= t) count = p.count;
    return count;
  }

  /** Incarnations whose process runs (spawned, not exited, not stopped) at `t`. */
  runningAt(t: number): IncarnationView[] {
    return [...this.incarnations.values()].filter((v) => {
      if (v.spawnedAt > t || (v.exitedAt !== undefined && v.exitedAt <= t)) return false;
      let stopped = false;
      for (const s of v.stops) if (s.at <= t) stopped = s.stopped;
      return !stopped;
    });
  }

  /** Why the group is not converged at `t`, or undefined when it is. */
  notConvergedAt(t: number): string | undefined {
    const running = this.runningAt(t);
    if (running.length === 0) return 'no member runs';
    let generation: number | undefined;
    const owned = new Set<string>();
    let total = 0;
    for (const v of running) {
      let last: IncarnationView['assigned'][number] | undefined;
      for (const a of v.assigned) if (a.at <= t) last = a;
      if (!last) return `${v.name} has no assignment yet`;
      let fenced = false;
      let lostAt: number | undefined;
      for (const e of v.events) {
        if (e.at > t) break;
        if (e.event === 'fenced') fenced = true;
        else if (e.event === 'unfenced' || e.event === 'rejoined') fenced = false;
        if (e.event === 'lost') lostAt = e.at;
      }
      if (fenced) return `${v.name} is fenced`;
      if (lostAt !== undefined && last.at < lostAt) return `${v.name} lost its session and has not rejoined`;
      if (generation === undefined) generation = last.generation;
      else if (last.generation !== generation)
        return `${v.name} is on generation ${last.generation}, not ${generation}`;
      for (const p of last.partitions) owned.add(p);
      total += last.partitions.length;
    }
    const count = this.partitionsAt(t);
    // With at least as many partitions as members, every member owns some (every strategy gives each a share).
    if (count >= running.length) {
      for (const v of running) {
        let last: IncarnationView['assigned'][number] | undefined;
        for (const a of v.assigned) if (a.at <= t) last = a;
        if (last!.partitions.length === 0) return `${v.name} owns nothing`;
      }
    }
    if (total !== owned.size) return 'a partition has two owners';
    if (owned.size !== count) return `${owned.size} of ${count} partitions owned`;
    for (let p = 0; p < count; p++) if (!owned.has(`${this.topic}:${p}`)) return `partition ${p} has no owner`;
    return undefined;
  }

  /** Every time at which the state may change, between `from` and `to`. */
  changesBetween(from: number, to: number): number[] {
    const times = new Set<number>();
    const add = (t: number) => {
      if (t >= from && t <= to) times.add(t);
    };
    for (const v of this.incarnations.values()) {
      add(v.spawnedAt);
      if (v.exitedAt !== undefined) add(v.exitedAt);
      for (const s of v.stops) add(s.at);
      for (const a of v.assigned) add(a.at);
      for (const e of v.events) add(e.at);
    }
    for (const p of this.partitionCounts) add(p.at);
    return [...times].sort((a, b) => a - b);
  }

  /**
   * When the group converged for good after `from`: the start of the converged stretch that lasts until `to` (the
   * next fault, or the end of the run), or undefined when it is not converged just before `to`. A group that looks
   * converged for a moment after a fault and then falls apart (a session found lost late) counts from when it came
   * together again.
   */
  convergedFrom(from: number, to: number): number | undefined {
    let since: number | undefined = this.notConvergedAt(from) === undefined ? from : undefined;
    for (const t of this.changesBetween(from, to)) {
      if (t >= to) break;
      const converged = this.notConvergedAt(t) === undefined;
      if (converged && since === undefined) since = t;
      else if (!converged) since = undefined;
    }
    return since;
  }
}

/** Reads a run directory back. */
export function readRun(dir: string): {
  settings: RunSettings;
  events: RunEvent[];
  lines: Map<string, MemberLine[]>;
} {
  const settings = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as RunSettings;
  const events = fs
    .readFileSync(path.join(dir, 'events.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as RunEvent);
  const lines = new Map<string, MemberLine[]>();
  const membersDir = path.join(dir, 'members');
  for (const file of fs.readdirSync(membersDir).sort()) {
    if (!file.endsWith('.log')) continue;
    const parsed: MemberLine[] = [];
    for (const text of fs.readFileSync(path.join(membersDir, file), 'utf8').split('\n')) {
      const line = parseMemberLine(text);
      if (line) parsed.push(line);
    }
    lines.set(file.slice(0, -'.log'.length), parsed);
  }
  return { settings, events, lines };
}
