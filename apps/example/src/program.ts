import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Command, CommanderError } from 'commander';
import { isKielError } from '@kiel/consumer';
import { firstLine, optionOf, UnreachableError, UsageError, watchStdout } from './common';
import { allocationCommand } from './commands/allocation';
import { consumeCommand } from './commands/consume';
import { dashboardCommand } from './commands/dashboard';
import { demoCommand } from './commands/demo';
import { produceCommand } from './commands/produce';
import { workCommand } from './commands/work';

/** The flag behind each library option a command passes through, to name it in usage errors. */
const OPTION_FLAGS: Readonly<Record<string, string>> = {
  brokers: '--brokers',
  group: '--group',
  topics: '--topic',
  topic: '--topic',
  weight: '--weight',
  strategy: '--strategy',
  sessionTimeout: '--session-timeout',
  ttl: '--session-timeout',
  hosts: '--zk / --etcd',
  from: '--from',
};

/** Exit codes of the `kiel` command. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

function packageVersion(): string {
  const file = path.join(__dirname, '..', 'package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

/** Builds the `kiel` command tree. */
export function program(): Command {
  const root = new Command('kiel')
    .description('kiel for TypeScript: produce, consume, run group members, inspect allocations, run the demo')
    .version(packageVersion())
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .configureHelp({ showGlobalOptions: false });
  for (const command of [
    produceCommand(),
    consumeCommand(),
    workCommand(),
    allocationCommand(),
    dashboardCommand(),
    demoCommand(),
  ]) {
    // Subcommands do not inherit exitOverride when built separately: give each the same handling.
    root.addCommand(command.exitOverride().showHelpAfterError('(add --help for usage)'));
  }
  return root;
}

/**
 * Runs the CLI and returns the exit code: 0 done, 1 a failure (an unreachable server, a refused request), 2 a usage
 * error. User errors are one line on stderr, never a stack trace; `KIEL_DEBUG=1` adds the stack.
 */
export async function main(argv: readonly string[]): Promise<number> {
  watchStdout();
  try {
    await program().parseAsync([...argv]);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has printed its message (naming the flag) already; help and version are not errors.
      if (['commander.helpDisplayed', 'commander.help', 'commander.version'].includes(err.code)) return EXIT.ok;
      if (err.code === 'commander.executeSubCommandAsync') return err.exitCode;
      return EXIT.usage;
    }
    if (process.env.KIEL_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
    if (err instanceof UsageError) {
      process.stderr.write(`error: ${err.message}\n`);
      return EXIT.usage;
    }
    if ((err as { code?: unknown })?.code === 'ERR_INVALID_CONFIG') {
      // A library refused a value that came from a flag: name the flag, as for any usage error.
      const option = optionOf(err) ?? /(?:option |`)(\w+)/.exec(firstLine(err))?.[1];
      const flag = option !== undefined ? OPTION_FLAGS[option] : undefined;
      process.stderr.write(`error: ${flag ? `option ${flag}: ` : ''}${firstLine(err)}\n`);
      return EXIT.usage;
    }
    if (err instanceof UnreachableError) {
      process.stderr.write(`error: ${err.message}\n`);
      return EXIT.failure;
    }
    const code = isKielError(err) || (err as { code?: unknown })?.code ? ` [${(err as { code: string }).code}]` : '';
    process.stderr.write(`error: ${firstLine(err)}${code}\n`);
    return EXIT.failure;
  }
}
