import { Command } from 'commander';
import { freezeGroup, unfreezeGroup, type GroupControlState } from '@kiel/consumer';
import { createBackend, reach } from '../common';

interface FreezeFlags {
  group: string;
  backend: 'zk' | 'etcd';
  json: boolean;
  reason?: string;
  zk: string[];
  etcd: string[];
}

/** What `kiel allocation freeze|unfreeze --json` prints. */
export interface FreezeReport extends GroupControlState {
  group: string;
}

function describeState(group: string, state: GroupControlState): string {
  if (!state.frozen) return `group ${group} is not frozen: its leader publishes allocations as members come and go\n`;
  const since = state.since !== undefined ? ` since ${new Date(state.since).toISOString()}` : '';
  const reason = state.reason !== undefined ? ` (${state.reason})` : '';
  return (
    `group ${group} is frozen${since}${reason}: its leader publishes nothing new; members keep their partitions, ` +
    `joining members wait, and the partitions of members that go wait for the unfreeze\n`
  );
}

function controlCommand(name: 'freeze' | 'unfreeze'): Command {
  const command = new Command(name)
    .description(
      name === 'freeze'
        ? "freeze a group's allocation for a deploy or an incident: the leader publishes nothing until unfreeze"
        : 'lift a freeze: the leader publishes an allocation for the members and partitions of now',
    )
    // --group, --backend, --zk, --etcd and --json are the `allocation` command's: commander parses them there.
    .addHelpText(
      'after',
      '\nTakes the options of `kiel allocation`: --group (required), --backend, --zk, --etcd, --json.',
    );
  if (name === 'freeze') command.option('--reason <text>', 'why, shown by `kiel allocation`');
  return command.action(async () => {
    const flags = command.optsWithGlobals<FreezeFlags>();
    if (flags.group === undefined) command.error("error: required option '--group <id>' not specified");
    const { backend, server, address } = createBackend(flags.backend, { ...flags, brokers: [] });
    try {
      await reach(server, address, () => backend.connect());
      const state =
        name === 'freeze'
          ? await freezeGroup(backend, flags.group, flags.reason !== undefined ? { reason: flags.reason } : {})
          : await unfreezeGroup(backend, flags.group);
      if (flags.json) {
        const report: FreezeReport = { group: flags.group, ...state };
        process.stdout.write(`${JSON.stringify(report)}\n`);
      } else {
        process.stdout.write(describeState(flags.group, state));
      }
    } finally {
      await backend.close().catch(() => undefined);
    }
  });
}

/** `kiel allocation freeze` and `kiel allocation unfreeze`. */
export function freezeCommands(): Command[] {
  return [controlCommand('freeze'), controlCommand('unfreeze')];
}
