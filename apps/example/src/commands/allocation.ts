import { Command } from 'commander';
import { parseAllocation, type AllocationRecord, type Member } from '@kiel/consumer';
import { backendOption, createBackend, etcdOption, reach, zkOption } from '../common';
import { table } from '../format';

interface AllocationFlags {
  group: string;
  backend: 'zk' | 'etcd';
  json: boolean;
  zk: string[];
  etcd: string[];
  brokers: string[];
}

/** What `kiel allocation --json` prints: the published record, plus the members alive right now. */
export interface AllocationReport {
  group: string;
  generation: number;
  leader: string;
  strategy: string;
  /** member id → `topic:partition` list, for every member of the published allocation. */
  members: Record<string, { partitions: string[]; live: boolean; host?: string; pid?: number; weight?: number }>;
  /** Live members not (yet) in the published allocation. */
  pending: string[];
  partitions: number;
}

/** Flattens `{ member: { topic: [p] } }` into `topic:partition` ids. */
function partitionsOf(assignment: AllocationRecord['assignment'], member: string): string[] {
  const topics = assignment[member] ?? {};
  return Object.entries(topics).flatMap(([topic, ps]) => (ps as readonly number[]).map((p) => `${topic}:${p}`));
}

/** Builds the report from the record and the live member list. */
export function allocationReport(group: string, record: AllocationRecord, live: readonly Member[]): AllocationReport {
  const byId = new Map(live.map((m) => [m.info.id, m.info]));
  const members: AllocationReport['members'] = {};
  for (const id of record.members) {
    const info = byId.get(id);
    members[id] = {
      partitions: partitionsOf(record.assignment, id),
      live: info !== undefined,
      ...(info ? { host: info.host, pid: info.pid } : {}),
      ...(info?.weight !== undefined ? { weight: info.weight } : {}),
    };
  }
  return {
    group,
    generation: record.generation,
    leader: record.leader,
    strategy: record.strategy,
    members,
    pending: live.map((m) => m.info.id).filter((id) => !record.members.includes(id)),
    partitions: record.partitions.length,
  };
}

/** `kiel allocation`: the group's published allocation. */
export function allocationCommand(): Command {
  return new Command('allocation')
    .description("print a group's current published allocation: generation, leader, strategy, each member's partitions")
    .requiredOption('--group <id>', 'group id')
    .addOption(backendOption())
    .option('--json', 'one JSON object on stdout instead of a table')
    .addOption(zkOption())
    .addOption(etcdOption())
    .addHelpText('after', '\nExits 1 when the group has no published allocation.')
    .action(async (flags: AllocationFlags) => {
      const { backend, server, address } = createBackend(flags.backend, { ...flags, brokers: [] });
      try {
        await reach(server, address, () => backend.connect());
        const [stored, live] = await Promise.all([
          backend.readRecord(flags.group, 'allocation'),
          backend.members(flags.group),
        ]);
        if (!stored) {
          throw new Error(`group ${flags.group} has no published allocation in ${server} at ${address}`);
        }
        const record = parseAllocation(stored.value, stored.location);
        const report = allocationReport(flags.group, record, live);
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(report)}\n`);
          return;
        }
        let out = `group ${report.group}  generation ${report.generation}  strategy ${report.strategy}  ${report.partitions} partitions\n`;
        out += `leader ${report.leader}\n\n`;
        out += table(
          ['member', 'live', 'count', 'partitions'],
          Object.entries(report.members).map(([id, m]) => [
            id + (id === report.leader ? ' (leader)' : ''),
            m.live ? 'yes' : 'no',
            String(m.partitions.length),
            m.partitions.join(' '),
          ]),
        );
        if (report.pending.length > 0) out += `\njoined, not yet allocated: ${report.pending.join(' ')}\n`;
        process.stdout.write(out);
      } finally {
        await backend.close().catch(() => undefined);
      }
    });
}
