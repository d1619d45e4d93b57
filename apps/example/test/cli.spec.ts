/** End to end against the real stack: the built CLI, spawned as a user would run it. */
import { Kafka, logLevel } from 'kafkajs';
import { messageValue } from '../src/kafka';
import { waitFor } from '@kiel/test-kit';
import { BROKERS, CliProcess, ETCD, runCli, unique, ZK } from './helpers';

const kafka = new Kafka({ clientId: 'kiel-example-test', brokers: BROKERS.split(','), logLevel: logLevel.NOTHING });
const admin = kafka.admin();
const topics: string[] = [];

beforeAll(() => admin.connect());
afterAll(async () => {
  if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => undefined);
  await admin.disconnect();
});

const backends = ['--zk', ZK, '--etcd', ETCD];
const servers = ['--brokers', BROKERS, ...backends];

describe('produce, then consume', () => {
  it.each(['lz4', 'zstd', 'gzip'])('gives back the same keys and values (%s)', async (compression) => {
    const topic = unique('kiel-cli-pc');
    topics.push(topic);
    const count = 300;
    const produced = await runCli([
      'produce',
      '--topic',
      topic,
      '--count',
      String(count),
      '--partitions',
      '3',
      '--size',
      '40',
      '--compression',
      compression,
      '--brokers',
      BROKERS,
    ]);
    expect(produced.code).toBe(0);
    expect(produced.stdout).toBe('');
    expect(produced.stderr).toContain(`produced ${count} messages`);

    const consumed = await runCli([
      'consume',
      '--topic',
      topic,
      '--from',
      'beginning',
      '--count',
      String(count),
      '--format',
      'json',
      '--brokers',
      BROKERS,
    ]);
    expect(consumed.code).toBe(0);
    const lines = consumed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(count);
    const byKey = new Map(lines.map((l) => [l.key as string, l]));
    for (let i = 0; i < count; i++) {
      const line = byKey.get(String(i));
      expect(line).toMatchObject({ topic, value: messageValue(i, 40) });
      expect(typeof line!.timestamp).toBe('number');
    }
    expect(new Set(lines.map((l) => `${l.partition}:${l.offset}`)).size).toBe(count);
    expect(new Set(lines.map((l) => l.partition))).toEqual(new Set([0, 1, 2]));
  });

  it('--format value prints one value per line; --from a date after the data reads nothing old', async () => {
    const topic = unique('kiel-cli-pcv');
    topics.push(topic);
    expect(
      (await runCli(['produce', '--topic', topic, '--count', '5', '--partitions', '1', '--brokers', BROKERS])).code,
    ).toBe(0);
    const values = await runCli([
      'consume',
      '--topic',
      topic,
      '--from',
      'beginning',
      '--count',
      '5',
      '--brokers',
      BROKERS,
    ]);
    expect(values.code).toBe(0);
    expect(values.stdout.split('\n').filter(Boolean)).toEqual([0, 1, 2, 3, 4].map((i) => messageValue(i, 16)));

    const later = new Date(Date.now() + 1_000).toISOString();
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect((await runCli(['produce', '--topic', topic, '--count', '2', '--brokers', BROKERS])).code).toBe(0);
    const fromDate = await runCli(['consume', '--topic', topic, '--from', later, '--count', '2', '--brokers', BROKERS]);
    expect(fromDate.code).toBe(0);
    // The second run numbers its messages from 0 again: offsets show these are the new ones.
    expect(fromDate.stdout.split('\n').filter(Boolean)).toEqual([0, 1].map((i) => messageValue(i, 16)));
  });

  it('consume exits 0 on SIGTERM', async () => {
    const topic = unique('kiel-cli-sig');
    topics.push(topic);
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    expect((await runCli(['produce', '--topic', topic, '--count', '1', '--brokers', BROKERS])).code).toBe(0);
    const consumer = new CliProcess(['consume', '--topic', topic, '--from', 'beginning', '--brokers', BROKERS]);
    // Signalled once it is consuming (it printed the message), not after a fixed sleep: on a loaded machine Node
    // may not have reached the CLI's SIGTERM handler within a second or two.
    await waitFor('consume to print the message', () => consumer.stdoutLines.length > 0, 30_000);
    consumer.kill('SIGTERM');
    expect(await consumer.exited).toEqual({ code: 0, signal: null });
  });
});

describe.each([
  ['zk', 'background commits', []],
  ['etcd', '--no-autocommit', ['--no-autocommit']],
])('two work processes on %s (%s)', (backend, _mode, extra) => {
  it('split a topic; SIGTERM on one hands its partitions over with nothing lost; allocation shows the members', async () => {
    const topic = unique('kiel-cli-work');
    const group = unique('kiel-cli-group');
    topics.push(topic);
    await admin.createTopics({ topics: [{ topic, numPartitions: 6 }], waitForLeaders: true });
    const args = [
      'work',
      '--group',
      group,
      '--topic',
      topic,
      '--backend',
      backend,
      '--format',
      'json',
      '--log-format',
      'json',
      ...extra,
      ...servers,
    ];
    const first = new CliProcess(args);
    const second = new CliProcess(args);
    try {
      const stderrOf = () =>
        [first, second].map((p, i) => `member ${i + 1} stderr:\n  ${p.stderrLines.join('\n  ')}`).join('\n');
      await waitFor(
        'both members to own 3 partitions',
        () => first.owned().length === 3 && second.owned().length === 3,
        30_000,
        stderrOf,
      );
      expect(new Set([...first.owned(), ...second.owned()]).size).toBe(6);

      const shown = await runCli(['allocation', '--group', group, '--backend', backend, '--json', ...backends]);
      expect(shown.code).toBe(0);
      const report = JSON.parse(shown.stdout) as {
        members: Record<string, { partitions: string[]; live: boolean }>;
        leader: string;
        strategy: string;
      };
      const memberOf = (p: CliProcess) => p.events().find((e) => e.event === 'joined')!.member as string;
      expect(Object.keys(report.members).sort()).toEqual([memberOf(first), memberOf(second)].sort());
      expect(report.members[memberOf(first)]).toEqual(
        expect.objectContaining({ live: true, partitions: first.owned().sort() }),
      );
      expect(report.strategy).toBe('naive');
      expect([memberOf(first), memberOf(second)]).toContain(report.leader);
      const table = await runCli(['allocation', '--group', group, '--backend', backend, ...backends]);
      expect(table.code).toBe(0);
      expect(table.stdout).toContain(memberOf(first));
      expect(table.stdout).toContain(memberOf(second));
      expect(table.stdout).toMatch(/generation \d+/);

      const produce = (count: number) =>
        runCli(['produce', '--topic', topic, '--count', String(count), '--brokers', BROKERS]);
      expect((await produce(300)).code).toBe(0);
      const handled = () => first.stdoutLines.length + second.stdoutLines.length;
      await waitFor('the first 300 messages', () => handled() >= 300, 30_000);

      first.kill('SIGTERM');
      expect(await first.exited).toEqual({ code: 0, signal: null });
      await waitFor('the second member to own every partition', () => second.owned().length === 6, 30_000, stderrOf);
      expect((await produce(300)).code).toBe(0);
      await waitFor('all 600 messages', () => handled() >= 600, 30_000);
      // Give a stray redelivery the time to show up before counting.
      await new Promise((resolve) => setTimeout(resolve, 1_500));

      const all = [...first.messages(), ...second.messages()];
      const positions = all.map((m) => `${m.partition}:${m.offset}`);
      expect(new Set(positions).size).toBe(600);
      expect(all).toHaveLength(600);
      expect(first.messages().every((m) => m.member === memberOf(first))).toBe(true);

      second.kill('SIGTERM');
      expect(await second.exited).toEqual({ code: 0, signal: null });
      expect(second.events().some((e) => e.event === 'left')).toBe(true);
    } finally {
      first.kill('SIGKILL');
      second.kill('SIGKILL');
    }
  });
});

describe('work --count', () => {
  it.each(['zk', 'etcd'])('stops after exactly N messages and commits only those (%s)', async (backend) => {
    const topic = unique('kiel-cli-count');
    const group = unique('kiel-cli-count');
    topics.push(topic);
    expect(
      (await runCli(['produce', '--topic', topic, '--count', '100', '--partitions', '1', '--brokers', BROKERS])).code,
    ).toBe(0);
    const run = () =>
      runCli(['work', '--group', group, '--topic', topic, '--backend', backend, '--count', '30', ...servers]);
    const first = await run();
    expect(first.code).toBe(0);
    expect(first.stdout.split('\n').filter(Boolean)).toEqual(Array.from({ length: 30 }, (_, i) => messageValue(i, 16)));
    // The next member of the group starts where the first stopped: nothing skipped, nothing repeated.
    const second = await run();
    expect(second.code).toBe(0);
    expect(second.stdout.split('\n').filter(Boolean)).toEqual(
      Array.from({ length: 30 }, (_, i) => messageValue(30 + i, 16)),
    );
  });
});
