import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import { InvalidArgumentError, Option } from 'commander';
import { isKielError } from '@kiel/consumer';
import type { AllocatorBackend } from '@kiel/consumer';
// The backends (and the ZooKeeper and gRPC clients under them) load when a command makes one: `kiel consume` and
// `kiel produce` start 0.3 s sooner without them.
type ZooKeeperBackendModule = typeof import('@kiel/allocator-zk');
type EtcdBackendModule = typeof import('@kiel/allocator-etcd');

/**
 * A mistake in how the command was called (a bad flag or value). The CLI prints it and exits with code 2;
 * `flag` names the option at fault.
 */
export class UsageError extends Error {
  readonly code = 'ERR_USAGE';
  constructor(
    readonly flag: string,
    message: string,
  ) {
    super(`option ${flag}: ${message}`);
    this.name = 'UsageError';
  }
}

/**
 * A server that did not answer. The CLI prints one line naming it and exits with code 1.
 */
export class UnreachableError extends Error {
  readonly code = 'ERR_UNREACHABLE';
  constructor(
    readonly server: string,
    readonly address: string,
    reason: string,
  ) {
    super(`cannot reach ${server} at ${address}: ${reason}`);
    this.name = 'UnreachableError';
  }
}

/** How long any connection phase may take before the CLI gives up on a server. Below the 15 s promised. */
export const CONNECT_DEADLINE_MS = 12_000;

/** Option parser for a positive integer; commander turns the throw into a usage error naming the flag. */
export function positiveInt(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n <= 0) {
    throw new InvalidArgumentError('expected a positive integer.');
  }
  return n;
}

/** Option parser for a non-negative integer. */
export function nonNegativeInt(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError('expected a non-negative integer.');
  }
  return n;
}

/** Option parser for a positive finite number. */
export function positiveNumber(text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError('expected a positive number.');
  return n;
}

/** Option parser for a comma-separated list of non-empty names. */
export function nameList(text: string): string[] {
  const names = text.split(',').map((s) => s.trim());
  if (names.length === 0 || names.some((n) => n === '')) {
    throw new InvalidArgumentError('expected a comma-separated list of non-empty names.');
  }
  return names;
}

/** Option parser for a comma-separated `host:port` list. */
export function hostList(text: string): string[] {
  const hosts = text.split(',').map((s) => s.trim());
  for (const h of hosts) {
    const m = /^(?:[A-Za-z0-9.-]+|\[[0-9a-fA-F:.]+\]):(\d{1,5})$/.exec(h);
    if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) {
      throw new InvalidArgumentError(`expected host:port[,host:port...], got ${JSON.stringify(h)}.`);
    }
  }
  return hosts;
}

/** `--brokers`, from KAFKA_BROKERS by default. */
export const brokersOption = () =>
  new Option('--brokers <host:port,...>', 'Kafka bootstrap brokers')
    .env('KAFKA_BROKERS')
    .default(['127.0.0.1:9092'], '127.0.0.1:9092')
    .argParser(hostList);

/** `--zk`, from ZK_HOSTS by default. */
export const zkOption = () =>
  new Option('--zk <host:port,...>', 'ZooKeeper ensemble')
    .env('ZK_HOSTS')
    .default(['127.0.0.1:2181'], '127.0.0.1:2181')
    .argParser(hostList);

/** `--etcd`, from ETCD_HOSTS by default. */
export const etcdOption = () =>
  new Option('--etcd <host:port,...>', 'etcd endpoints')
    .env('ETCD_HOSTS')
    .default(['127.0.0.1:2379'], '127.0.0.1:2379')
    .argParser(hostList);

/** `--backend zk|etcd`. */
export const backendOption = () =>
  new Option('--backend <name>', 'where the group members meet').choices(['zk', 'etcd']).default('zk');

/** The output format of message commands. */
export const formatOption = () =>
  new Option('--format <format>', 'value: one value per line; json: one object per line')
    .choices(['value', 'json'])
    .default('value');

/** Connection settings every command shares. */
export interface ServerOptions {
  readonly brokers: string[];
  readonly zk: string[];
  readonly etcd: string[];
}

/** Builds the coordination backend the flags ask for. */
export function createBackend(
  kind: 'zk' | 'etcd',
  servers: ServerOptions,
  sessionTimeoutMs?: number,
): { backend: AllocatorBackend; server: string; address: string } {
  if (kind === 'zk') {
    return {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      backend: new (require('@kiel/allocator-zk') as ZooKeeperBackendModule).ZooKeeperBackend({
        hosts: servers.zk,
        connectTimeout: 10_000,
        ...(sessionTimeoutMs !== undefined ? { sessionTimeout: sessionTimeoutMs } : {}),
      }),
      server: 'ZooKeeper',
      address: servers.zk.join(','),
    };
  }
  return {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    backend: new (require('@kiel/allocator-etcd') as EtcdBackendModule).EtcdBackend({
      hosts: servers.etcd,
      connectTimeout: 10_000,
      ...(sessionTimeoutMs !== undefined ? { ttl: Math.max(2, Math.ceil(sessionTimeoutMs / 1000)) } : {}),
    }),
    server: 'etcd',
    address: servers.etcd.join(','),
  };
}

/** Codes (ours, the backends', Node's) that mean "the server is not there". */
const UNREACHABLE_CODES = new Set([
  'ERR_NO_BROKERS',
  'ERR_CONNECTION',
  'ERR_REQUEST_TIMEOUT',
  'ERR_BACKEND_UNAVAILABLE',
  'ERR_BACKEND_TIMEOUT',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
]);

/** True when an error says a server did not answer (rather than answered with a refusal). */
export function looksUnreachable(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false;
  const e = err as { code?: unknown; name?: unknown; message?: unknown };
  if (typeof e.code === 'string' && UNREACHABLE_CODES.has(e.code)) return true;
  return (
    typeof e.name === 'string' &&
    [
      'KafkaJSConnectionError',
      'KafkaJSNumberOfRetriesExceeded',
      'KafkaJSBrokerNotFound',
      'KafkaJSNonRetriableError',
    ].includes(e.name) &&
    typeof e.message === 'string' &&
    /connect|ECONNREFUSED|timeout|broker/i.test(e.message)
  );
}

/**
 * Runs a connection step with a deadline. Any failure to reach the server (or the deadline) becomes an
 * {@link UnreachableError} naming it; other errors (a refusal, a bad config) pass through.
 */
export async function reach<T>(server: string, address: string, step: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new UnreachableError(server, address, `no answer within ${CONNECT_DEADLINE_MS / 1000} s`)),
      CONNECT_DEADLINE_MS,
    );
  });
  try {
    return await Promise.race([step(), deadline]);
  } catch (err) {
    if (err instanceof UnreachableError) throw err;
    if (looksUnreachable(err)) throw new UnreachableError(server, address, firstLine(err));
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** The first line of an error's message, for one-line reports. */
export function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0]!;
}

/** Whether a TCP port answers within `timeoutMs`. */
export function portAnswers(hostPort: string, timeoutMs = 1000): Promise<boolean> {
  const i = hostPort.lastIndexOf(':');
  const host = hostPort.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(hostPort.slice(i + 1));
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** A KielError of the consumer about a bad option: it is the user's input, so a usage error. */
export function optionOf(err: unknown): string | undefined {
  return isKielError(err, 'ERR_INVALID_CONFIG') ? (err.option ?? undefined) : undefined;
}

/** Writes a log line to stderr (data goes to stdout). */
export function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Emits `closed` once when the reader of stdout went away (EPIPE, as with `| head`). */
export const stdoutEvents = new EventEmitter<{ closed: [] }>();
let stdoutClosed = false;

/**
 * Treats a closed stdout like `SIGPIPE` in a Unix tool, without the crash: the commands stop as on SIGTERM (a group
 * member still leaves gracefully) and later writes are dropped.
 */
export function watchStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
    if (stdoutClosed) return;
    stdoutClosed = true;
    stdoutEvents.emit('closed');
  });
}

/**
 * Calls `handler` on the first SIGINT or SIGTERM, or when stdout's reader goes away. A second signal gets Node's
 * default handling (the process ends at once), the usual escape when a graceful stop hangs.
 */
export function onStopSignal(handler: (signal: NodeJS.Signals) => void): () => void {
  const listener = (signal: NodeJS.Signals) => handler(signal);
  const closed = () => handler('SIGPIPE');
  process.once('SIGINT', listener);
  process.once('SIGTERM', listener);
  stdoutEvents.once('closed', closed);
  return () => {
    process.off('SIGINT', listener);
    process.off('SIGTERM', listener);
    stdoutEvents.off('closed', closed);
  };
}
