// The soak's checker: reads a run directory (run-log.ts) and judges it. It fails on
//   - a lost message: an offset below the partition's final end offset that no member handled;
//   - two members handling one partition at overlapping times (the handler call in flight when its process was
//     stopped with SIGSTOP is left out: nothing can interrupt a frozen process, see handler-safety.ts);
//   - a duplicate that neither a crash nor a lost session explains: an offset may be handled again only when whoever
//     handled it before was killed, or lost its session, after handling it and before committing past it; each
//     duplicate is put down to the fault that caused that crash or loss;
//   - a group that does not converge within session timeout + 5 s after a fault ended (run-log.ts says what
//     converged means);
//   - a member process that exited without being asked to.
import { ProcessingLog, timeOfDay, type Interval } from '../group-harness';
import { abridged, lostRanges } from '../handler-safety';
import { GroupTimeline, readRun, type FaultEvent, type FaultKind, type RunEvent, type RunSettings } from './run-log';

export interface Duplicate {
  readonly partition: number;
  readonly offset: number;
  /** Incarnations in the order they handled it. */
  readonly by: readonly string[];
  /** `crash: #3 kill-restart` or `lost session: #7 store-quorum-loss`, or undefined when nothing explains it. */
  readonly cause: string | undefined;
  /** The fault kind it is put down to (for the table). */
  readonly kind: FaultKind | 'no fault' | undefined;
  readonly story: string;
}

export interface FaultOutcome {
  readonly fault: FaultEvent;
  /** ms from the fault's end until the group converged; undefined when it did not within the window looked at. */
  readonly convergedAfterMs: number | undefined;
  /** Why it was not converged at the limit, when it was late. */
  readonly why: string | undefined;
}

export interface CheckResult {
  readonly settings: RunSettings;
  readonly faults: readonly FaultOutcome[];
  readonly endOffsets: readonly number[];
  readonly produced: readonly number[];
  readonly handled: number;
  readonly distinct: number;
  readonly lost: readonly string[];
  readonly overlaps: readonly string[];
  readonly duplicates: readonly Duplicate[];
  readonly unexpectedExits: readonly string[];
  /** Sessions lost while no fault was in progress (not a failure by itself, but worth a look). */
  readonly lostWithoutFault: readonly string[];
  readonly failures: readonly string[];
  readonly timeline: GroupTimeline;
  readonly log: ProcessingLog;
  readonly events: readonly RunEvent[];
  /** session timeout + 5 s. */
  readonly convergenceLimitMs: number;
}

/** Nearest-rank percentile of `values` (ms), undefined when empty. */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Checks the run in `dir`. */
export function checkRun(dir: string): CheckResult {
  const { settings, events, lines } = readRun(dir);
  return checkRecord(settings, events, lines);
}

/** Checks a run given as its parts (what `checkRun` reads from the files; the unit tests build them directly). */
export function checkRecord(
  settings: RunSettings,
  events: readonly RunEvent[],
  lines: ReadonlyMap<string, ReadonlyArray<{ at: number; kind: string; rest: readonly string[] }>>,
): CheckResult {
  const timeline = new GroupTimeline(settings.topic, settings.partitions, settings.startedAt);
  for (const e of events) timeline.onEvent(e);
  const log = new ProcessingLog();
  const unexpectedExits: string[] = [];
  for (const [incarnation, list] of lines) {
    for (const line of list) {
      timeline.onLine(incarnation, line);
      if (line.kind === 'HANDLED') {
        const offsets = line.rest[3] ? line.rest[3].split(',').map(Number) : [];
        log.record(incarnation, Number(line.rest[0]), offsets, Number(line.rest[1]), Number(line.rest[2]));
      }
    }
  }
  const faults = events.filter((e): e is FaultEvent => e.type === 'fault');
  const final = events.find((e): e is Extract<RunEvent, { type: 'final' }> => e.type === 'final');
  const producedEvent = events.find((e): e is Extract<RunEvent, { type: 'produced' }> => e.type === 'produced');
  const failures: string[] = [];
  if (!final) failures.push('the run has no final end offsets: it did not finish');
  const endOffsets = final?.endOffsets ?? [];
  const produced = producedEvent?.perPartition ?? [];
  for (const e of events) {
    if (e.type === 'exit' && !e.expected) {
      const tail = (lines.get(e.incarnation) ?? []).slice(-3).map((l) => `${l.kind} ${l.rest.join(' ')}`);
      unexpectedExits.push(
        `${e.incarnation} exited by itself at ${timeOfDay(e.at)} (code ${e.code}, signal ${e.signal}); last lines: ${tail.join(' | ')}`,
      );
    }
  }
  failures.push(...unexpectedExits);

  // Lost messages: every offset below the final end offset.
  const lost = final ? lostRanges(log, endOffsets) : [];
  if (lost.length > 0) failures.push(`lost messages: ${abridged(lost)}`);
  for (let p = 0; p < produced.length; p++) {
    if (final && produced[p]! > (endOffsets[p] ?? 0)) {
      failures.push(`partition ${p}: ${produced[p]} messages acknowledged but its end offset is ${endOffsets[p]}`);
    }
  }

  // Overlaps, leaving out the handler call in flight when its process was stopped. The signal is not instant: a call
  // may begin just after SIGSTOP was sent and before the process stops. One that began in that window and ended after
  // SIGCONT was running when the process stopped (nothing runs while it is stopped); one that ended before SIGCONT ran
  // whole before the stop and counts like any other.
  const stops = new Map<string, Array<{ stop: number; cont: number }>>();
  for (const e of events) {
    if (e.type !== 'signal') continue;
    const list = stops.get(e.incarnation) ?? [];
    if (e.signal === 'SIGSTOP') list.push({ stop: e.at, cont: Infinity });
    if (e.signal === 'SIGCONT' && list.length > 0) list[list.length - 1]!.cont = e.at;
    stops.set(e.incarnation, list);
  }
  const inFlightAtStop = (i: Interval) =>
    (stops.get(i.member) ?? []).some(
      ({ stop, cont }) => (i.start <= stop && i.end >= stop) || (i.start > stop && i.start < cont && i.end >= cont),
    );
  const overlaps = log.describeOverlaps(inFlightAtStop);
  if (overlaps.length > 0) failures.push(`two members on one partition at once: ${abridged(overlaps, 3)}`);

  // Duplicates and their causes.
  const limit = settings.sessionTimeout + 5_000;
  const faultAt = (t: number) =>
    faults
      .filter((f) => f.start <= t && t <= f.end + limit)
      .reduce<FaultEvent | undefined>((latest, f) => (!latest || f.start > latest.start ? f : latest), undefined);
  const killedBy = new Map<string, FaultEvent>();
  for (const f of faults) for (const inc of f.killed ?? []) killedBy.set(inc, f);
  const exits = new Map<string, Extract<RunEvent, { type: 'exit' }>>();
  for (const e of events) if (e.type === 'exit') exits.set(e.incarnation, e);
  const intervalsOf = new Map<number, Interval[]>();
  for (const i of log.intervals) {
    const list = intervalsOf.get(i.partition);
    if (list) list.push(i);
    else intervalsOf.set(i.partition, [i]);
  }
  const committedBefore = (incarnation: string, partition: number, at: number) => {
    let offset = 0;
    for (const c of timeline.incarnations.get(incarnation)?.commits ?? []) {
      if (c.partition === partition && c.at < at && c.offset > offset) offset = c.offset;
    }
    return offset;
  };
  const duplicates: Duplicate[] = [];
  const lostWithoutFault = new Set<string>();
  for (const { partition, offset } of log.duplicates()) {
    const handlings = (intervalsOf.get(partition) ?? [])
      .filter((i) => i.count > 0 && i.first <= offset && offset <= i.last)
      .sort((a, b) => a.start - b.start);
    for (let k = 1; k < handlings.length; k++) {
      const before = handlings[k - 1]!;
      const again = handlings[k]!;
      const view = timeline.incarnations.get(before.member);
      const exit = exits.get(before.member);
      let cause: string | undefined;
      let kind: Duplicate['kind'];
      if (exit && exit.signal === 'SIGKILL' && exit.at >= before.start) {
        if (offset >= committedBefore(before.member, partition, exit.at)) {
          const f = killedBy.get(before.member);
          cause = f ? `crash: #${f.id} ${f.kind}` : 'crash: killed outside a fault';
          kind = f?.kind ?? 'no fault';
        }
      }
      if (!cause && view) {
        const lostEvent = view.events.find((e) => e.event === 'lost' && e.at >= before.start);
        if (lostEvent && offset >= committedBefore(before.member, partition, lostEvent.at)) {
          const f = faultAt(lostEvent.at);
          cause = f ? `lost session: #${f.id} ${f.kind}` : 'lost session: no fault in progress';
          kind = f?.kind ?? 'no fault';
          if (!f) lostWithoutFault.add(`${before.member} at ${timeOfDay(lostEvent.at)}`);
        }
      }
      const inProgress = faultAt(again.start);
      duplicates.push({
        partition,
        offset,
        by: handlings.map((h) => h.member),
        cause,
        kind,
        story:
          `partition ${partition} offset ${offset}: handled by ${before.member} at ${timeOfDay(before.start)}, ` +
          `again by ${again.member} at ${timeOfDay(again.start)}; ${before.member} had committed ` +
          `${committedBefore(before.member, partition, again.start)} by then` +
          (inProgress ? `; fault in progress: #${inProgress.id} ${inProgress.kind} (${inProgress.detail})` : ''),
      });
    }
  }
  const unexplained = duplicates.filter((d) => d.cause === undefined);
  if (unexplained.length > 0) {
    failures.push(
      `${unexplained.length} duplicates neither a crash nor a lost session explains: ${abridged(
        unexplained.map((d) => d.story),
        3,
      )}`,
    );
  }

  // Convergence after each fault.
  const runEnd = final?.at ?? Math.max(...faults.map((f) => f.end + limit + 60_000), settings.startedAt);
  const outcomes: FaultOutcome[] = faults.map((fault, i) => {
    // Until the next fault begins (the soak draws it only after the group converged, or after the limit passed).
    const horizon = Math.min(faults[i + 1]?.start ?? runEnd, runEnd);
    const converged = timeline.convergedFrom(fault.end, horizon);
    const after = converged === undefined ? undefined : converged - fault.end;
    const why =
      after === undefined || after > limit
        ? timeline.notConvergedAt(Math.min(fault.end + limit, horizon - 1))
        : undefined;
    return { fault, convergedAfterMs: after, why };
  });
  for (const o of outcomes) {
    if (o.convergedAfterMs === undefined || o.convergedAfterMs > limit) {
      failures.push(
        `#${o.fault.id} ${o.fault.kind} (${o.fault.detail}): the group did not converge within ${limit / 1000} s ` +
          `after the fault ended at ${timeOfDay(o.fault.end)} (` +
          (o.convergedAfterMs === undefined ? 'not at all' : `after ${(o.convergedAfterMs / 1000).toFixed(1)} s`) +
          `; at the limit: ${o.why})`,
      );
    }
  }

  let distinct = 0;
  for (const byOffset of log.handled.values()) distinct += byOffset.size;
  return {
    settings,
    faults: outcomes,
    endOffsets,
    produced,
    handled: log.count,
    distinct,
    lost,
    overlaps,
    duplicates,
    unexpectedExits,
    lostWithoutFault: [...lostWithoutFault],
    failures,
    timeline,
    log,
    events,
    convergenceLimitMs: limit,
  };
}

const seconds = (ms: number | undefined) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(2)} s`);

/** The run's table, as printed at the end (Markdown, so that it can go into a README as it is). */
export function formatTable(result: CheckResult, commit = ''): string {
  const s = result.settings;
  const out: string[] = [];
  out.push(
    `soak: backend ${s.backend}, seed ${s.seed}, ${s.minutes} min, ${s.members.length} members, ` +
      `session ${s.sessionTimeout / 1000} s, stack ${s.stack}${commit ? `, commit ${commit}` : ''}`,
  );
  out.push('');
  out.push('| fault | injected | converged after: p50 | p99 | max |');
  out.push('| --- | ---: | ---: | ---: | ---: |');
  const kinds = [...new Set(result.faults.map((f) => f.fault.kind))].sort();
  for (const kind of kinds) {
    const list = result.faults.filter((f) => f.fault.kind === kind);
    const times = list.map((f) => f.convergedAfterMs).filter((t): t is number => t !== undefined);
    out.push(
      `| ${kind} | ${list.length} | ${seconds(percentile(times, 50))} | ${seconds(percentile(times, 99))} | ` +
        `${seconds(times.length ? Math.max(...times) : undefined)} |`,
    );
  }
  const all = result.faults.map((f) => f.convergedAfterMs).filter((t): t is number => t !== undefined);
  out.push(
    `| **all** | ${result.faults.length} | ${seconds(percentile(all, 50))} | ${seconds(percentile(all, 99))} | ` +
      `${seconds(all.length ? Math.max(...all) : undefined)} |`,
  );
  out.push('');
  const inLog = result.endOffsets.reduce((a, b) => a + b, 0);
  const acked = result.produced.reduce((a, b) => a + b, 0);
  out.push(
    `messages: ${acked} acknowledged to the producer, ${inLog} in the log (${result.endOffsets.length} partitions), ` +
      `${result.handled} handled, ${result.distinct} distinct, ${result.lost.length === 0 ? 0 : result.lost.length + ' ranges'} lost`,
  );
  const byCause = new Map<string, number>();
  for (const d of result.duplicates) {
    const key = d.cause === undefined ? 'UNEXPLAINED' : `${d.cause.split(':')[0]} (${d.kind})`;
    byCause.set(key, (byCause.get(key) ?? 0) + 1);
  }
  out.push(
    `duplicates: ${result.duplicates.length}` +
      (byCause.size
        ? ` (${[...byCause]
            .sort()
            .map(([k, n]) => `${k} ${n}`)
            .join(', ')})`
        : ''),
  );
  out.push(`overlaps (two members on one partition at once): ${result.overlaps.length}`);
  out.push(
    `convergence after a fault: p50 ${seconds(percentile(all, 50))}, p99 ${seconds(percentile(all, 99))} ` +
      `(limit: session + 5 s = ${result.convergenceLimitMs / 1000} s)`,
  );
  if (result.lostWithoutFault.length) {
    out.push(`sessions lost with no fault in progress: ${result.lostWithoutFault.join(', ')}`);
  }
  out.push(
    result.failures.length === 0
      ? 'verdict: PASS'
      : `verdict: FAIL (${result.failures.length})\n${result.failures.map((f) => `  - ${f}`).join('\n')}`,
  );
  return out.join('\n');
}
