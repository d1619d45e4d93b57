import { table } from '../../format';
import type { Worker } from './worker';

/** A rebalance as one member reported it. */
export interface RebalanceReport {
  generation: number;
  worker: string;
  /** The member id it reported as, to match the allocation's `members`. */
  member: string;
  assigned: number;
  revoked: number;
  durationMs: number;
  at: number;
  leaving: boolean;
}

/** A published allocation, as the demo saw it appear in the backend. */
export interface Publication {
  generation: number;
  at: number;
  /** The member ids it was computed for. */
  members: readonly string[];
  /** Partitions whose owner changed from the previous publication. */
  moved: number;
}

/** A step of the script, to say what caused each rebalance. */
export interface Step {
  at: number;
  what: string;
  /** A membership change the script made (rather than a progress note). */
  trigger: boolean;
}

/** Everything the demo recorded, for the verdict. */
export interface DemoRun {
  sessionTimeout: number;
  produced: number;
  /** Which workers handled each message number. */
  deliveries: Map<number, string[]>;
  workers: Worker[];
  rebalances: RebalanceReport[];
  publications: Publication[];
  steps: Step[];
  interrupted: boolean;
}

/**
 * A generation's row timings from what the workers reported: its longest handoff, and when its last member had
 * applied it, after its publication. Only the generation's own members count, and not while leaving: a worker that
 * joins later applies the allocation it finds as its first, an older generation it is not in, possibly seconds
 * after that generation was published. Both are undefined when no member reported the generation.
 */
export function generationTimings(
  publication: Publication,
  reports: readonly RebalanceReport[],
): { longestHandoffMs?: number; allDoneAfterMs?: number } {
  const members = new Set(publication.members);
  const own = reports.filter((r) => r.generation === publication.generation && !r.leaving && members.has(r.member));
  if (own.length === 0) return {};
  return {
    longestHandoffMs: Math.max(...own.map((r) => r.durationMs)),
    allDoneAfterMs: Math.max(...own.map((r) => r.at)) - publication.at,
  };
}

/** Prints the verdict to stdout and returns the exit code: 0 only when nothing was lost and no duplicate is unexplained. */
export function verdict(run: DemoRun): number {
  const killed = new Set(run.workers.filter((w) => w.state === 'killed').map((w) => w.name));
  let lost = 0;
  for (let id = 0; id < run.produced; id++) if (!run.deliveries.has(id)) lost++;
  let duplicates = 0;
  let explained = 0;
  for (const names of run.deliveries.values()) {
    if (names.length < 2) continue;
    duplicates += names.length - 1;
    // A redelivery is expected only when the killed worker handled the message and died before committing it.
    if (names.some((n) => killed.has(n))) explained += names.length - 1;
  }
  const unexplained = duplicates - explained;
  let out = '\nverdict\n';
  out += table(
    ['produced', 'consumed (unique)', 'duplicates', 'lost'],
    [[String(run.produced), String(run.deliveries.size), String(duplicates), String(lost)]],
  );
  out +=
    duplicates === 0
      ? 'no duplicates.\n'
      : `duplicates: ${explained} from the killed worker's uncommitted window (at-least-once redelivery)` +
        (unexplained > 0 ? `, ${unexplained} NOT explained by the kill\n` : ', none elsewhere\n');

  out += '\nworkers\n';
  out += table(
    ['worker', 'member', 'handled', 'end'],
    run.workers.map((w) => [w.name, w.member ?? '-', String(w.handled), w.state]),
  );

  out += '\nrebalances (published allocations)\n';
  // What preceded a publication: every step since the previous one (a dead leader can delay a join's rebalance
  // until its session expires), else the last step before it.
  const sorted = [...run.publications].sort((x, y) => x.generation - y.generation);
  const rows = sorted.map((p, i) => {
    const previous = i > 0 ? sorted[i - 1]!.at : -1;
    const triggers = run.steps.filter((st) => st.trigger);
    const since = triggers.filter((st) => st.at > previous && st.at <= p.at);
    const causes = since.length > 0 ? since : [[...triggers].reverse().find((st) => st.at <= p.at) ?? triggers[0]!];
    const { longestHandoffMs, allDoneAfterMs } = generationTimings(p, run.rebalances);
    return [
      String(p.generation),
      causes.map((c) => c.what.replace(/:.*$/, '')).join('; '),
      `${((p.at - causes[0]!.at) / 1000).toFixed(1)} s`,
      String(p.members.length),
      String(p.moved),
      longestHandoffMs !== undefined ? `${Math.round(longestHandoffMs)} ms` : '-',
      allDoneAfterMs !== undefined ? `${(allDoneAfterMs / 1000).toFixed(1)} s` : '-',
    ];
  });
  out += table(
    ['generation', 'after', 'published after', 'members', 'moved', 'longest handoff', 'all members done'],
    rows,
  );
  const leaves = run.workers.filter((w) => w.leave?.done !== undefined);
  if (leaves.length > 0) {
    out += '\ngraceful leaves (final commit, claims released)\n';
    out += table(
      ['worker', 'partitions released', 'SIGTERM to exit'],
      leaves.map((w) => [w.name, String(w.leave!.released), `${Math.round(w.leave!.done! - w.leave!.sent)} ms`]),
    );
  }
  out +=
    '\nA handoff is revoke, commit and release on the old owner, then claim and fetch on the new one. A "-" means no\n' +
    'member finished that generation on its own: a newer one arrived during the handoff, and both were applied\n' +
    "together. The killed worker's partitions " +
    `move only when its session expires (--session-timeout ${run.sessionTimeout} ms).\n`;

  const ok = lost === 0 && unexplained === 0 && !run.interrupted;
  out += `\n${ok ? 'PASS' : 'FAIL'}: ${lost} lost, ${duplicates} duplicates (${unexplained} unexplained)${run.interrupted ? ', interrupted' : ''}\n`;
  process.stdout.write(out);
  return ok ? 0 : 1;
}
