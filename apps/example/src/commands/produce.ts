import { Command, Option } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { brokersOption, log, nonNegativeInt, onStopSignal, positiveInt, positiveNumber, UsageError } from '../common';
import {
  COMPRESSIONS,
  connectAdmin,
  connectProducer,
  ensureTopic,
  kafkaClient,
  partitionCount,
  produceMessages,
  type CompressionName,
} from '../kafka';

interface ProduceFlags {
  topic: string;
  count: number;
  size: number;
  partitions?: number;
  compression: CompressionName;
  rate?: number;
  brokers: string[];
  progress: boolean;
}

/** `kiel produce`: sends numbered messages through kafkajs. */
export function produceCommand(): Command {
  return new Command('produce')
    .description('send COUNT numbered messages to a topic (through kafkajs), with a progress bar on stderr')
    .requiredOption('--topic <name>', 'topic to send to')
    .requiredOption('--count <n>', 'number of messages', positiveInt)
    .option('--size <bytes>', 'minimum value size: the message number, padded with dots', nonNegativeInt, 16)
    .option('--partitions <p>', 'create the topic with P partitions if it does not exist', positiveInt)
    .addOption(new Option('--compression <codec>', 'compression of the batches').choices(COMPRESSIONS).default('none'))
    .option('--rate <msgs_per_s>', 'pace sending to this many messages per second', positiveNumber)
    .addOption(brokersOption())
    .option('--no-progress', 'no progress bar, even on a terminal')
    .addHelpText(
      'after',
      '\nMessage n has key "n" and value "n" padded with dots to --size bytes. A summary line goes to stderr.',
    )
    .action(async (flags: ProduceFlags) => {
      if (flags.topic === '') throw new UsageError('--topic', 'expected a non-empty topic name');
      const kafka = kafkaClient(flags.brokers);
      const admin = await connectAdmin(kafka, flags.brokers);
      try {
        if (flags.partitions !== undefined) {
          const created = await ensureTopic(admin, flags.topic, flags.partitions);
          if (!created) {
            const count = await partitionCount(admin, flags.topic);
            if (count !== flags.partitions) {
              log(
                `topic ${flags.topic} already exists with ${count} partitions; --partitions ${flags.partitions} ignored`,
              );
            }
          }
        }
      } finally {
        await admin.disconnect();
      }
      const producer = await connectProducer(kafka, flags.brokers);
      const bar =
        flags.progress && process.stderr.isTTY
          ? new SingleBar(
              { stream: process.stderr, format: 'produce |{bar}| {value}/{total} msgs  {rate} msg/s  eta {eta}s' },
              Presets.shades_classic,
            )
          : undefined;
      let interrupted = false;
      const unlisten = onStopSignal(() => (interrupted = true));
      const started = performance.now();
      bar?.start(flags.count, 0, { rate: 0 });
      try {
        const sent = await produceMessages({
          producer,
          topic: flags.topic,
          count: flags.count,
          size: flags.size,
          compression: flags.compression,
          ...(flags.rate !== undefined ? { rate: flags.rate } : {}),
          stopped: () => interrupted,
          onProgress: (n) =>
            bar?.update(n, { rate: Math.round(n / Math.max(0.001, (performance.now() - started) / 1000)) }),
        });
        bar?.stop();
        const seconds = (performance.now() - started) / 1000;
        log(
          `produced ${sent} messages to ${flags.topic} in ${seconds.toFixed(1)} s (${Math.round(sent / Math.max(seconds, 0.001))} msg/s)` +
            (interrupted ? ', interrupted' : ''),
        );
      } finally {
        bar?.stop();
        unlisten();
        await producer.disconnect();
      }
    });
}
