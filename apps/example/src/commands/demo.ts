import { Command } from 'commander';

/** `kiel demo`. */
export function demoCommand(): Command {
  return new Command('demo').description('demo').action(async () => undefined);
}
