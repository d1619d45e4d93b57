/**
 * @kiel/example: the `kiel` command-line tool. The commands are also available as functions, for embedding the
 * CLI or testing it in-process.
 */
export { main, program, EXIT } from './program';
export { UsageError, UnreachableError } from './common';
export { toLine, render } from './format';
export type { MessageLine } from './format';
export { messageValue } from './kafka';
export type { AllocationReport } from './commands/allocation';
