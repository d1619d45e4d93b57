import { Command, InvalidArgumentError, Option } from 'commander';
import {
  backendOption,
  brokersOption,
  createBackend,
  etcdOption,
  log,
  nonNegativeInt,
  onStopSignal,
  positiveNumber,
  reach,
  UsageError,
  zkOption,
} from '../common';
import { GroupMonitor } from '../dashboard/monitor';
// The web server (fastify, @fastify/static and their ~200 modules) is loaded by this command alone: every other
// command, `kiel consume` among them, started up paying for it.
type DashboardServerModule = typeof import('../dashboard/server');

interface DashboardFlags {
  group: string;
  backend: 'zk' | 'etcd';
  port: number;
  host: string;
  interval: number;
  zk: string[];
  etcd: string[];
  brokers: string[];
}

/** `kiel dashboard`: a live page of one group in the browser. */
export function dashboardCommand(): Command {
  return new Command('dashboard')
    .description(
      'serve a live page of a group: members and health, a partition × owner grid coloured by lag, the rebalance ' +
        'timeline, throughput per member',
    )
    .requiredOption('--group <id>', 'group id')
    .addOption(backendOption())
    .addOption(new Option('--port <n>', 'HTTP port (0 picks a free one)').default(8080).argParser(port))
    .option(
      '--host <address>',
      'address to listen on (loopback by default: the page has no authentication)',
      '127.0.0.1',
    )
    .addOption(
      new Option('--interval <seconds>', 'how often offsets and watermarks are read')
        .default(1)
        .argParser(positiveNumber),
    )
    .addOption(brokersOption())
    .addOption(zkOption())
    .addOption(etcdOption())
    .addHelpText(
      'after',
      '\nPrints the page address on stdout once it listens, then runs until Ctrl-C. It only reads: it never joins the ' +
        'group nor commits.\nExample:\n  kiel dashboard --group billing --backend etcd --port 8080   # then open http://127.0.0.1:8080/',
    )
    .action(async (flags: DashboardFlags) => {
      const { backend, server, address } = createBackend(flags.backend, flags);
      const monitor = new GroupMonitor(backend, server, flags.group, flags.brokers, {
        intervalMs: flags.interval * 1000,
      });
      let app: Awaited<ReturnType<DashboardServerModule['dashboardServer']>> | undefined;
      try {
        await reach(server, address, () => backend.connect());
        await reach('Kafka', flags.brokers.join(','), () => monitor.start());
        if (!(await backend.readRecord(flags.group, 'allocation'))) {
          log(`group ${flags.group} has no published allocation in ${server} at ${address} yet: waiting for one`);
        }
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        app = await (require('../dashboard/server') as DashboardServerModule).dashboardServer(monitor);
        try {
          await app.listen({ port: flags.port, host: flags.host });
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
            throw new UsageError('--port', `cannot listen on ${flags.host}:${flags.port} (${code})`);
          }
          throw err;
        }
        const bound = app.server.address();
        const port = typeof bound === 'object' && bound ? bound.port : flags.port;
        const host = flags.host.includes(':') ? `[${flags.host}]` : flags.host;
        process.stdout.write(`http://${host}:${port}/\n`);
        await new Promise<void>((resolve) => {
          const unhook = onStopSignal(() => {
            unhook();
            resolve();
          });
        });
      } finally {
        await app?.close().catch(() => undefined);
        await monitor.close();
        await backend.close().catch(() => undefined);
      }
    });
}

/** Option parser for a TCP port (0: any free one). */
function port(text: string): number {
  const n = nonNegativeInt(text);
  if (n > 65535) throw new InvalidArgumentError('expected a port from 0 to 65535.');
  return n;
}
