import { Command } from 'commander';
import { SingleConsumer, type StartPosition } from '@kiel/consumer';
import { brokersOption, formatOption, log, onStopSignal, positiveInt, reach, UsageError } from '../common';
import { BatchWriter } from '../format';

interface ConsumeFlags {
  topic: string;
  from: string;
  count?: number;
  format: 'value' | 'json';
  brokers: string[];
}

/** Parses `--from`: beginning, end, or an ISO-8601 date. */
export function parseFrom(text: string): StartPosition {
  if (text === 'beginning' || text === 'end') return text;
  // Only dates that look like ISO 8601: Date.parse accepts much more, and guessing would surprise.
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(text)) {
    const date = new Date(text);
    if (!Number.isNaN(date.getTime())) return date;
  }
  throw new UsageError('--from', `expected beginning, end or an ISO-8601 date, got ${JSON.stringify(text)}`);
}

/** `kiel consume`: reads every partition of a topic with a SingleConsumer. */
export function consumeCommand(): Command {
  return new Command('consume')
    .description('read a topic (every partition, no group) and print its messages to stdout')
    .requiredOption('--topic <name>', 'topic to read')
    .option('--from <position>', 'beginning, end, or an ISO-8601 date (first offset at or after it)', 'end')
    .option('--count <n>', 'exit after N messages', positiveInt)
    .addOption(formatOption())
    .addOption(brokersOption())
    .addHelpText('after', '\nRuns until --count messages were printed, or until SIGINT/SIGTERM (then exits 0).')
    .action(async (flags: ConsumeFlags) => {
      if (flags.topic === '') throw new UsageError('--topic', 'expected a non-empty topic name');
      const from = parseFrom(flags.from);
      const consumer = new SingleConsumer<Buffer | null>({
        brokers: flags.brokers,
        topics: [flags.topic],
        from,
        deserializer: 'raw',
        clientId: 'kiel-cli',
        connectTimeout: 5_000,
      });
      consumer.on('error', (err) => log(`kiel consume: ${err.message}`));
      let printed = 0;
      const output = new BatchWriter(process.stdout);
      let finish!: () => void;
      const finished = new Promise<void>((resolve) => (finish = resolve));
      const unlisten = onStopSignal(() => finish());
      try {
        await reach('Kafka', flags.brokers.join(','), () => consumer.connect());
        const running = consumer.run({
          eachBatch: (batch) => {
            const n = Math.min(batch.messages.length, flags.count === undefined ? Infinity : flags.count - printed);
            if (n <= 0) return;
            output.write(batch.messages, n, flags.format);
            printed += n;
            if (flags.count !== undefined && printed >= flags.count) finish();
          },
        });
        await Promise.race([finished, running]);
      } finally {
        unlisten();
        await consumer.close();
      }
    });
}
