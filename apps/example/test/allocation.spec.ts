/**
 * `kiel allocation` against the real stack: owner, claim holder, committed offset, high watermark and lag per
 * partition, lag and liveness per member, `--watch`, `--json`; and Kafka's own `kafka-consumer-groups --describe`
 * (run from the broker's jars by `scripts/stack kafka-consumer-groups`) showing the same committed offsets and lag.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import type { AllocationReport } from '../src/commands/allocation';
import { waitFor } from '@kiel/test-kit';
import { BROKERS, CliProcess, ETCD, runCli, unique, ZK } from './helpers';

const ROOT = path.join(__dirname, '..', '..', '..');
const kafka = new Kafka({ clientId: 'kiel-allocation-test', brokers: BROKERS.split(','), logLevel: logLevel.NOTHING });
const admin = kafka.admin();
const topics: string[] = [];

beforeAll(() => admin.connect());
afterAll(async () => {
  if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => undefined);
  await admin.disconnect();
});

const servers = ['--brokers', BROKERS, '--zk', ZK, '--etcd', ETCD];

async function report(group: string, backend: string): Promise<AllocationReport> {
  const shown = await runCli(['allocation', '--group', group, '--backend', backend, '--json', ...servers]);
  expect(shown.stderr).toBe('');
  expect(shown.code).toBe(0);
  return JSON.parse(shown.stdout) as AllocationReport;
}

/** One row of `kafka-consumer-groups --describe`. */
interface DescribeRow {
  topic: string;
  partition: number;
  current: string;
  logEnd: string;
  lag: string;
  consumerId: string;
}

/** Runs Kafka's kafka-consumer-groups tool (Java, the broker's own jars) and parses its table. */
function describeGroup(group: string): { rows: DescribeRow[]; stdout: string; stderr: string } {
  const r = spawnSync(
    process.execPath,
    [
      path.join(ROOT, 'scripts', 'stack'),
      'kafka-consumer-groups',
      '--bootstrap-server',
      BROKERS,
      '--describe',
      '--group',
      group,
    ],
    { encoding: 'utf8', timeout: 120_000 },
  );
  expect(r.status).toBe(0);
  const rows = r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((cells) => cells[0] === group)
    .map(([, topic, partition, current, logEnd, lag, consumerId]) => ({
      topic: topic!,
      partition: Number(partition),
      current: current!,
      logEnd: logEnd!,
      lag: lag!,
      consumerId: consumerId!,
    }));
  return { rows, stdout: r.stdout, stderr: r.stderr };
}

describe.each(['zk', 'etcd'])('kiel allocation with a member on %s', (backend) => {
  it('shows owner, claim, committed offset, high watermark and lag; Kafka’s own tool agrees', async () => {
    const topic = unique('kiel-alloc');
    const group = unique('kiel-alloc');
    topics.push(topic);
    const produce = (count: number) =>
      runCli(['produce', '--topic', topic, '--count', String(count), '--partitions', '4', '--brokers', BROKERS]);
    expect((await produce(400)).code).toBe(0);

    const member = new CliProcess([
      'work',
      ...['--group', group, '--topic', topic, '--backend', backend, '--format', 'json', '--log-format', 'json'],
      ...servers,
    ]);
    try {
      await waitFor(
        'the member to own 4 partitions',
        () => member.owned().length === 4,
        30_000,
        () => member.stderrLines.join('\n'),
      );
      const id = member.events().find((e) => e.event === 'joined')!.member as string;
      await waitFor('400 messages handled', () => member.stdoutLines.length >= 400, 30_000);

      // Background commits go out every second: wait (in-process, through kafkajs) until all 400 are committed.
      const committedSum = async () =>
        (await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0]!.partitions.reduce(
          (sum, p) => sum + Math.max(0, Number(p.offset)),
          0,
        );
      for (let i = 0; i < 100 && (await committedSum()) < 400; i++) {
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const live = await report(group, backend);
      expect(live.offsets).toHaveLength(4);
      for (const o of live.offsets) {
        expect(o).toEqual(expect.objectContaining({ owner: id, claim: id, lag: 0, committed: o.highWatermark }));
      }
      expect(live.offsets.reduce((sum, o) => sum + o.highWatermark, 0)).toBe(400);
      expect(live.members[id]).toEqual(
        expect.objectContaining({ live: true, allocated: true, claimed: 4, lag: 0, partitions: member.owned().sort() }),
      );
      const table = await runCli(['allocation', '--group', group, '--backend', backend, ...servers]);
      expect(table.code).toBe(0);
      expect(table.stdout).toMatch(/^partition +owner +claim holder +committed +high watermark +lag$/m);
      expect(table.stdout).toContain('session alive');

      member.kill('SIGTERM');
      expect(await member.exited).toEqual({ code: 0, signal: null });
      expect((await produce(100)).code).toBe(0);

      // Nobody is left: the claims are gone, the allocation stays, the lag is what was produced since.
      const after = await report(group, backend);
      expect(after.lag).toBe(100);
      expect(after.members[id]).toEqual(expect.objectContaining({ live: false, claimed: 0, lag: 100 }));
      for (const o of after.offsets) {
        expect(o.claim).toBeNull();
        expect(o.lag).toBe(o.highWatermark - o.committed!);
      }

      // Kafka's tool reads the same offsets from the same group coordinator; our groups have no members in its view.
      const described = describeGroup(group);
      expect(described.stdout + described.stderr).toContain(`Consumer group '${group}' has no active members.`);
      expect(described.rows.map((r) => `${r.topic}:${r.partition}`).sort()).toEqual(
        after.offsets.map((o) => o.partition).sort(),
      );
      for (const row of described.rows) {
        const ours = after.offsets.find((o) => o.partition === `${row.topic}:${row.partition}`)!;
        expect({ current: row.current, logEnd: row.logEnd, lag: row.lag, consumerId: row.consumerId }).toEqual({
          current: String(ours.committed),
          logEnd: String(ours.highWatermark),
          lag: String(ours.lag),
          consumerId: '-',
        });
      }
    } finally {
      member.kill('SIGKILL');
    }
  }, 240_000);
});

describe('kiel allocation --watch', () => {
  it('prints a fresh report every interval until SIGTERM, as JSON lines and as tables', async () => {
    const topic = unique('kiel-alloc-watch');
    const group = unique('kiel-alloc-watch');
    topics.push(topic);
    expect(
      (await runCli(['produce', '--topic', topic, '--count', '50', '--partitions', '2', '--brokers', BROKERS])).code,
    ).toBe(0);
    const work = await runCli(['work', '--group', group, '--topic', topic, '--count', '20', ...servers]);
    expect(work.code).toBe(0);

    const json = new CliProcess(['allocation', '--group', group, '--watch', '0.3', '--json', ...servers]);
    await waitFor(
      'three JSON reports',
      () => json.stdoutLines.length >= 3,
      20_000,
      () => json.stderrLines.join('\n'),
    );
    json.kill('SIGTERM');
    expect(await json.exited).toEqual({ code: 0, signal: null });
    const reports = json.stdoutLines.map((l) => JSON.parse(l) as AllocationReport);
    expect(new Set(reports.map((r) => r.at)).size).toBe(reports.length);
    for (const r of reports) expect(r.lag).toBe(30);

    const text = new CliProcess(['allocation', '--group', group, '--watch', '0.3', ...servers]);
    await waitFor(
      'two tables',
      () => text.stdoutLines.filter((l) => l.startsWith('partition ')).length >= 2,
      20_000,
      () => text.stderrLines.join('\n'),
    );
    text.kill('SIGINT');
    expect(await text.exited).toEqual({ code: 0, signal: null });
  }, 120_000);

  it.each([
    ['0', /option '--watch \[seconds\]' argument '0' is invalid/],
    ['soon', /option '--watch \[seconds\]' argument 'soon' is invalid/],
  ])('refuses --watch %s with a usage error', async (value, message) => {
    const r = await runCli(['allocation', '--group', 'g', '--watch', value]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it.each(['zk', 'etcd'])('names the group that has no allocation (%s)', async (backend) => {
    const group = unique('kiel-alloc-none');
    const r = await runCli(['allocation', '--group', group, '--backend', backend, ...servers]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^error: group ${group} has no published allocation in (ZooKeeper|etcd) at `));
  });
});
