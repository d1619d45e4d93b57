import { Command, Option } from 'commander';
import {
  backendOption,
  brokersOption,
  createBackend,
  etcdOption,
  onStopSignal,
  positiveNumber,
  reach,
  zkOption,
} from '../common';
import { table } from '../format';
import { freezeCommands } from './allocation-freeze';
import type { GroupControlState } from '@kiel/consumer';
import { GroupInspector, type GroupSnapshot } from '../inspect';

interface AllocationFlags {
  group?: string;
  backend: 'zk' | 'etcd';
  json: boolean;
  watch?: number | true;
  zk: string[];
  etcd: string[];
  brokers: string[];
}

/** What `kiel allocation --json` prints (one object; with `--watch`, one object per line and refresh). */
export interface AllocationReport {
  group: string;
  /** `Date.now()` when it was read. */
  at: number;
  generation: number;
  leader: string;
  strategy: string;
  /** Every member of the published allocation, plus live members not in it yet. */
  members: Record<
    string,
    {
      partitions: string[];
      /** Its member entry exists (session or lease alive: contact within the session timeout). */
      live: boolean;
      /** Waited for (`rebalanceDelay`): milliseconds left before its partitions move; null when not waited for. */
      waitingMs: number | null;
      /** In the published allocation. */
      allocated: boolean;
      /** How many of its partitions its claims already hold. */
      claimed: number;
      /** Sum of its partitions' lag. */
      lag: number;
      /** Milliseconds since its committed offsets last advanced, as seen by this process; null until seen. */
      lastCommitMsAgo: number | null;
      /** Messages per second committed on its partitions since the previous refresh (`--watch`), else null. */
      rate: number | null;
      host?: string;
      pid?: number;
      weight?: number;
    }
  >;
  /** Live members not (yet) in the published allocation. */
  pending: string[];
  /** How many partitions the allocation covers. */
  partitions: number;
  /** Per partition: owner, claim holder, committed offset, high watermark, lag. */
  offsets: Array<{
    partition: string;
    owner: string | null;
    claim: string | null;
    committed: number | null;
    highWatermark: number;
    lag: number | null;
    /** Its handler made no progress for `stallTimeout`: reported by `member`, stuck at `offset` since `since`. */
    stalled?: { member: string; offset: number; since: number };
  }>;
  /** Sum of every partition's lag. */
  lag: number;
  /** Named members whose partitions wait for them (`rebalanceDelay`): member → milliseconds left; idle meanwhile. */
  waiting: Record<string, number>;
  /** Moves held back by `maxMovesPerRebalance`: the group is still converging (0: it is not). */
  throttled: number;
  /** Whether the group is frozen (`kiel allocation freeze`), since when (`Date.now()`) and why. */
  control: GroupControlState;
}

/** Shapes an inspector snapshot as the `--json` report. */
export function allocationReport(snapshot: GroupSnapshot): AllocationReport {
  const allocation = snapshot.allocation!;
  const members: AllocationReport['members'] = {};
  for (const m of snapshot.members) {
    members[m.id] = {
      partitions: m.partitions,
      live: m.live,
      waitingMs: m.waitingMs,
      allocated: m.allocated,
      claimed: m.claimed,
      lag: m.lag,
      lastCommitMsAgo: m.lastCommitMsAgo,
      rate: m.rate,
      ...(m.host !== undefined ? { host: m.host, pid: m.pid! } : {}),
      ...(m.weight !== undefined ? { weight: m.weight } : {}),
    };
  }
  return {
    group: snapshot.group,
    at: snapshot.at,
    generation: allocation.generation,
    leader: allocation.leader,
    strategy: allocation.strategy,
    members,
    pending: snapshot.members.filter((m) => m.live && !m.allocated).map((m) => m.id),
    partitions: snapshot.partitions.filter((p) => p.owner !== null).length,
    offsets: snapshot.partitions.map((p) => ({
      partition: p.id,
      owner: p.owner,
      claim: p.claim?.member ?? null,
      committed: p.committed,
      highWatermark: p.highWatermark,
      lag: p.lag,
      ...(p.stalled ? { stalled: p.stalled } : {}),
    })),
    lag: snapshot.lag,
    waiting: snapshot.waiting,
    throttled: snapshot.throttled,
    control: snapshot.control,
  };
}

const dash = (v: number | null | undefined) => (v === null || v === undefined ? '-' : String(v));

/** "1.2 s ago", for the last-contact column. */
function ago(ms: number | null): string {
  if (ms === null) return '';
  return ms < 1000 ? `${ms} ms ago` : `${(ms / 1000).toFixed(1)} s ago`;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Renders the report as the text tables `kiel allocation` prints. */
export function renderAllocation(report: AllocationReport): string {
  let out = '';
  if (report.control.frozen) {
    const since = report.control.since !== undefined ? ` since ${new Date(report.control.since).toISOString()}` : '';
    const reason = report.control.reason !== undefined ? ` (${report.control.reason})` : '';
    out += `FROZEN${since}${reason}: no new allocation until \`kiel allocation unfreeze\`\n`;
  }
  out += `group ${report.group}  generation ${report.generation}  strategy ${report.strategy}  ${report.partitions} partitions  lag ${report.lag}\n`;
  out += `leader ${report.leader}\n\n`;
  out += table(
    ['member', 'live', 'count', 'claimed', 'lag', 'last contact', 'msg/s', 'partitions'],
    Object.entries(report.members).map(([id, m]) => [
      id + (id === report.leader ? ' (leader)' : ''),
      m.live ? 'yes' : m.waitingMs !== null ? `no, waiting ${seconds(m.waitingMs)}` : 'no',
      String(m.partitions.length),
      String(m.claimed),
      String(m.lag),
      m.live ? `session alive${m.lastCommitMsAgo !== null ? `, commit ${ago(m.lastCommitMsAgo)}` : ''}` : 'gone',
      m.rate === null ? '' : m.rate.toFixed(0),
      m.partitions.join(' '),
    ]),
  );
  out += '\n';
  out += table(
    ['partition', 'owner', 'claim holder', 'committed', 'high watermark', 'lag'],
    report.offsets.map((p) => [
      p.partition,
      p.owner ?? '-',
      p.claim === null
        ? p.owner !== null && report.waiting[p.owner] !== undefined
          ? '- (idle, its owner is waited for)'
          : '-'
        : p.claim === p.owner
          ? p.claim
          : `${p.claim} (handing off)`,
      dash(p.committed),
      String(p.highWatermark),
      dash(p.lag),
    ]),
  );
  if (report.pending.length > 0) out += `\njoined, not yet allocated: ${report.pending.join(' ')}\n`;
  for (const [id, ms] of Object.entries(report.waiting)) {
    out += `\nwaiting for ${id} to come back: its partitions are idle, and move in ${seconds(ms)}\n`;
  }
  if (report.throttled > 0) {
    out += `\nconverging: ${report.throttled} moves held back (maxMovesPerRebalance)\n`;
  }
  for (const p of report.offsets) {
    if (!p.stalled) continue;
    out +=
      `\nstalled: ${p.partition} at offset ${p.stalled.offset}, no progress for ` +
      `${((report.at - p.stalled.since) / 1000).toFixed(1)} s (reported by ${p.stalled.member})\n`;
  }
  return out;
}

/** Option parser for `--watch [seconds]`. */
function watchSeconds(text: string): number {
  return positiveNumber(text);
}

/** `kiel allocation`: the group's published allocation, claims, committed offsets and lag. */
export function allocationCommand(): Command {
  const command: Command = new Command('allocation');
  for (const sub of freezeCommands()) command.addCommand(sub);
  return (
    command
      .description(
        "print a group's allocation with lag: per partition owner, claim holder, committed offset, high watermark and " +
          'lag; per member partitions, lag sum and last contact',
      )
      // Not a required option: commander would demand it of `allocation freeze --group G` too, before the subcommand.
      .option('--group <id>', 'group id')
      .addOption(backendOption())
      .option('--json', 'one JSON object on stdout instead of tables (with --watch: one per line and refresh)')
      .addOption(
        new Option('--watch [seconds]', 'refresh in place every N seconds (default 2) until Ctrl-C').argParser(
          watchSeconds,
        ),
      )
      .addOption(brokersOption())
      .addOption(zkOption())
      .addOption(etcdOption())
      .addHelpText(
        'after',
        '\nExits 1 when the group has no published allocation in the backend.\n' +
          'Lag is the high watermark minus the committed offset; "-" where the group committed nothing yet.\n' +
          'Examples:\n' +
          '  kiel allocation --group billing --backend etcd\n' +
          '  kiel allocation --group billing --watch 1\n' +
          "  kiel allocation --group billing --json | jq '.offsets[] | select(.lag > 1000)'",
      )
      .action(async (flags: AllocationFlags) => {
        if (flags.group === undefined) command.error("error: required option '--group <id>' not specified");
        const { backend, server, address } = createBackend(flags.backend, flags);
        const inspector = new GroupInspector(backend, flags.group, flags.brokers);
        try {
          await reach(server, address, () => backend.connect());
          if (!(await inspector.allocation())) {
            throw new Error(`group ${flags.group} has no published allocation in ${server} at ${address}`);
          }
          await reach('Kafka', flags.brokers.join(','), () => inspector.connectKafka());
          const once = async () => {
            const snapshot = await inspector.snapshot();
            if (!snapshot.allocation) {
              throw new Error(`group ${flags.group} has no published allocation in ${server} at ${address}`);
            }
            return allocationReport(snapshot);
          };
          if (flags.watch === undefined) {
            const report = await once();
            process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : renderAllocation(report));
            return;
          }
          const seconds = flags.watch === true ? 2 : flags.watch;
          // In place on a terminal (cursor home, clear below); one block per refresh when piped.
          const inPlace = !flags.json && process.stdout.isTTY === true;
          let stop!: () => void;
          const stopped = new Promise<void>((resolve) => (stop = resolve));
          const unhook = onStopSignal(() => stop());
          try {
            for (;;) {
              const report = await once();
              if (flags.json) process.stdout.write(`${JSON.stringify(report)}\n`);
              else if (inPlace)
                process.stdout.write(`\x1b[H\x1b[2J${renderAllocation(report)}\n(every ${seconds} s; Ctrl-C stops)\n`);
              else process.stdout.write(`${renderAllocation(report)}\n`);
              let timer: NodeJS.Timeout | undefined;
              const next = new Promise<'tick'>(
                (resolve) => (timer = setTimeout(() => resolve('tick'), seconds * 1000)),
              );
              const why = await Promise.race([next, stopped.then(() => 'stop' as const)]);
              clearTimeout(timer);
              if (why === 'stop') return;
            }
          } finally {
            unhook();
          }
        } finally {
          inspector.close();
          await backend.close().catch(() => undefined);
        }
      })
  );
}
