import { Command, Option } from 'commander';
import { GroupedConsumer, type Message } from '@kiel/consumer';
import type { StrategyName } from '@kiel/allocators';
import {
  backendOption,
  brokersOption,
  createBackend,
  etcdOption,
  firstLine,
  formatOption,
  log,
  nameList,
  nonNegativeInt,
  onStopSignal,
  positiveInt,
  positiveNumber,
  reach,
  zkOption,
} from '../common';
import { BatchWriter, render } from '../format';

/** Thrown from the message handler once --count messages were printed: stops the run, message unhandled. */
const COUNT_REACHED = new Error('--count reached');

/** The strategy names `--strategy` accepts, as spelled on the command line, and the library's names for them. */
export const STRATEGY_FLAGS: Readonly<Record<string, StrategyName>> = {
  naive: 'naive',
  range: 'range',
  'round-robin': 'roundRobin',
  sticky: 'sticky',
  weighted: 'weighted',
  rendezvous: 'rendezvous',
};

/** `--strategy`. */
export const strategyOption = () =>
  new Option('--strategy <name>', 'allocation strategy').choices(Object.keys(STRATEGY_FLAGS)).default('naive');

interface WorkFlags {
  group: string;
  topic: string[];
  backend: 'zk' | 'etcd';
  strategy: string;
  weight?: number;
  count?: number;
  format: 'value' | 'json';
  autocommit: boolean;
  logFormat: 'text' | 'json';
  sessionTimeout?: number;
  instanceId?: string;
  rebalanceDelay?: number;
  initialRebalanceDelay?: number;
  maxMoves?: number;
  restarting: boolean;
  brokers: string[];
  zk: string[];
  etcd: string[];
}

/** `kiel work`: one member of a group, printing the messages of the partitions it owns. */
export function workCommand(): Command {
  return new Command('work')
    .description('join a group as one member (GroupedConsumer) and print the messages of the partitions it owns')
    .requiredOption('--group <id>', 'group id (the allocation group and the Kafka group holding the offsets)')
    .requiredOption('--topic <names>', 'topic, or comma-separated topics', nameList)
    .addOption(backendOption())
    .addOption(strategyOption())
    .option('--weight <w>', "this member's capacity, for the weighted strategy", positiveNumber)
    .option(
      '--count <n>',
      'leave the group and exit after N messages (with --no-autocommit: after the batch that reaches N)',
      positiveInt,
    )
    .addOption(formatOption())
    .option('--no-autocommit', 'commit explicitly after each handled batch instead of in the background')
    .option(
      '--session-timeout <ms>',
      'ZooKeeper session timeout / etcd lease TTL (rounded up to seconds); how long a crashed member holds its partitions',
      positiveInt,
    )
    .option('--instance-id <name>', 'a stable member name that survives restarts (gets the same partitions back)')
    .option(
      '--rebalance-delay <ms>',
      "as leader: how long a named member's partitions wait for it after its session ended",
      nonNegativeInt,
    )
    .option(
      '--initial-rebalance-delay <ms>',
      'as leader of a starting group: publish the first allocation once no member joined for this long',
      nonNegativeInt,
    )
    .option('--max-moves <n>', 'as leader: move at most N partitions between live members per generation', positiveInt)
    .option(
      '--restarting',
      'on SIGINT/SIGTERM, close as restarting: the partitions wait --rebalance-delay for this name',
    )
    .addOption(
      new Option('--log-format <format>', 'stderr log lines as text or JSON').choices(['text', 'json']).default('text'),
    )
    .addOption(brokersOption())
    .addOption(zkOption())
    .addOption(etcdOption())
    .addHelpText(
      'after',
      '\nOn SIGINT or SIGTERM the member leaves gracefully (final commit, claims released) and exits 0.\n' +
        'Rebalances, commits and errors are logged to stderr; messages go to stdout.',
    )
    .action(async (flags: WorkFlags) => {
      const emit = (event: string, fields: Record<string, unknown>, text: string) =>
        log(flags.logFormat === 'json' ? JSON.stringify({ event, ...fields }) : text);
      const { backend, server, address } = createBackend(flags.backend, flags, flags.sessionTimeout);
      const consumer = new GroupedConsumer<Buffer | null>({
        brokers: flags.brokers,
        group: flags.group,
        topics: flags.topic,
        backend,
        strategy: STRATEGY_FLAGS[flags.strategy]!,
        ...(flags.weight !== undefined ? { weight: flags.weight } : {}),
        autocommit: flags.autocommit,
        ...(flags.instanceId !== undefined ? { instanceId: flags.instanceId } : {}),
        ...(flags.rebalanceDelay !== undefined ? { rebalanceDelay: flags.rebalanceDelay } : {}),
        ...(flags.initialRebalanceDelay !== undefined ? { initialRebalanceDelay: flags.initialRebalanceDelay } : {}),
        ...(flags.maxMoves !== undefined ? { maxMovesPerRebalance: flags.maxMoves } : {}),
        deserializer: 'raw',
        clientId: 'kiel-cli',
        connectTimeout: 5_000,
        maxWaitTime: 500,
      });
      consumer.on('rebalance', (r) =>
        emit(
          'rebalance',
          { member: consumer.memberId, ...r, owned: consumer.assignment },
          `rebalance: generation ${r.generation}, +[${r.assigned.join(' ')}] -[${r.revoked.join(' ')}] in ${Math.round(r.durationMs)} ms; owns ${consumer.assignment.length} partitions`,
        ),
      );
      consumer.on('fenced', (info) =>
        emit(
          'fenced',
          { member: consumer.memberId, reason: info.reason },
          `fenced: processing paused (${info.reason})`,
        ),
      );
      consumer.on('unfenced', () => emit('unfenced', { member: consumer.memberId }, 'unfenced: processing resumes'));
      consumer.on('lost', (info) =>
        emit(
          'lost',
          { member: info.memberId, reason: info.reason },
          `session lost (${info.reason}): every partition released, rejoining`,
        ),
      );
      consumer.on('rejoined', (info) => emit('rejoined', { member: info.memberId }, `rejoined as ${info.memberId}`));
      consumer.on('error', (err) =>
        emit('error', { member: consumer.memberId, code: err.code, message: err.message }, `error: ${firstLine(err)}`),
      );
      consumer.on('skipped', (s) =>
        emit(
          'skipped',
          { topic: s.topic, partition: s.partition, offset: s.offset },
          `skipped ${s.topic}:${s.partition}@${s.offset}`,
        ),
      );

      let printed = 0;
      let stopping = false;
      let finish!: () => void;
      const finished = new Promise<void>((resolve) => (finish = resolve));
      const unlisten = onStopSignal((signal) => {
        emit('leaving', { member: consumer.memberId, signal }, `${signal}: leaving the group`);
        finish();
      });
      const countReached = () => flags.count !== undefined && printed >= flags.count;
      const output = new BatchWriter(process.stdout);
      /** Prints a batch in full: every message handed out is printed before it can be committed. */
      const print = (messages: readonly Message<Buffer | null>[]): void => {
        output.write(messages, messages.length, flags.format, consumer.memberId);
        printed += messages.length;
        if (countReached()) finish();
      };
      let running: Promise<void> | undefined;
      try {
        await reach(server, address, () => backend.connect());
        await reach('Kafka', flags.brokers.join(','), () => consumer.connect());
        emit(
          'joined',
          { member: consumer.memberId, group: flags.group, pid: process.pid, backend: flags.backend },
          `joined group ${flags.group} as ${consumer.memberId} (${server} at ${address})`,
        );
        if (flags.autocommit) {
          // Message by message, so that --count stops exactly: a handler that throws leaves its message unhandled
          // (and uncommitted), to be delivered again to whoever owns the partition next.
          running = consumer
            .run({
              eachMessage: (message) => {
                if (countReached()) throw COUNT_REACHED;
                process.stdout.write(render(message, flags.format, consumer.memberId));
                printed++;
                if (countReached()) finish();
              },
            })
            .catch((err: unknown) => {
              if (err !== COUNT_REACHED) throw err;
            });
          void running.catch(() => undefined);
        } else {
          // kiel's worker: take what arrived, handle it, commit, repeat. consume() marks the messages handled as it
          // returns them, so the commit covers exactly the batch just printed; --count therefore ends after the
          // batch that reaches it (printing less would commit messages nobody saw).
          running = (async () => {
            void finished.then(() => (stopping = true));
            while (!stopping) {
              for (const topic of flags.topic) {
                const messages = await consumer.consume(topic);
                if (messages.length === 0) continue;
                print(messages);
                await consumer.commitOffsets();
                if (stopping) break;
              }
            }
          })();
        }
        await Promise.race([finished, running]);
      } finally {
        stopping = true;
        unlisten();
        // The explicit-commit loop must finish its batch (print, commit) before the consumer closes.
        if (!flags.autocommit) await running?.catch(() => undefined);
        await consumer.close({ restarting: flags.restarting === true });
        await backend.close().catch(() => undefined);
      }
      emit('left', { member: consumer.memberId, printed }, `left the group after ${printed} messages`);
    });
}
