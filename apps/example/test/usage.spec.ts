/** Usage errors, help and unreachable servers: exit codes and one-line messages, never a stack trace. */
import { freePort } from '@kiel/test-kit';
import { runCli } from './helpers';

const STACK_FRAME = /^\s+at /m;

describe('usage errors exit 2 and name the flag', () => {
  const cases: Array<[string, string[], string]> = [
    ['a non-numeric count', ['produce', '--topic', 't', '--count', 'ten'], '--count'],
    ['a zero count', ['consume', '--topic', 't', '--count', '0'], '--count'],
    ['a missing required flag', ['produce', '--count', '3'], '--topic'],
    ['an unknown compression', ['produce', '--topic', 't', '--count', '1', '--compression', 'brotli'], '--compression'],
    ['a bad --from', ['consume', '--topic', 't', '--from', 'yesterday'], '--from'],
    ['an unknown strategy', ['work', '--group', 'g', '--topic', 't', '--strategy', 'fair'], '--strategy'],
    ['an unknown backend', ['allocation', '--group', 'g', '--backend', 'consul'], '--backend'],
    ['a broker list without port', ['consume', '--topic', 't', '--brokers', 'localhost'], '--brokers'],
    ['a negative weight', ['work', '--group', 'g', '--topic', 't', '--weight', '-1'], '--weight'],
    ['an empty topic in a list', ['work', '--group', 'g', '--topic', 'a,,b'], '--topic'],
    ['too few demo workers', ['demo', '--workers', '1'], '--workers'],
    ['a dashboard port out of range', ['dashboard', '--group', 'g', '--port', '70000'], '--port'],
    ['a zero dashboard interval', ['dashboard', '--group', 'g', '--interval', '0'], '--interval'],
    ['a dashboard without a group', ['dashboard', '--backend', 'etcd'], '--group'],
    ['an unknown flag', ['work', '--group', 'g', '--topic', 't', '--turbo'], '--turbo'],
    ['a group the consumer refuses', ['work', '--group', 'a/b', '--topic', 't'], '--group'],
    [
      'a session timeout ZooKeeper refuses',
      ['work', '--group', 'g', '--topic', 't', '--session-timeout', '99999999999'],
      '--session-timeout',
    ],
    [
      'a lease TTL etcd refuses',
      ['work', '--group', 'g', '--topic', 't', '--backend', 'etcd', '--session-timeout', '999999999'],
      '--session-timeout',
    ],
  ];
  it.each(cases)('%s', async (_name, args, flag) => {
    const result = await runCli(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(flag);
    expect(result.stderr).not.toMatch(STACK_FRAME);
    expect(result.stdout).toBe('');
  });

  it('an unknown command', async () => {
    const result = await runCli(['consumer']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('consumer');
  });
});

describe('--help', () => {
  it.each(['produce', 'consume', 'work', 'allocation', 'dashboard', 'demo'])('kiel %s --help', async (command) => {
    const result = await runCli([command, '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Usage: kiel ${command}`);
    expect(result.stdout).toContain('--help');
  });

  it('kiel --help lists every command', async () => {
    const result = await runCli(['--help']);
    expect(result.code).toBe(0);
    for (const command of ['produce', 'consume', 'work', 'allocation', 'dashboard', 'demo'])
      expect(result.stdout).toContain(command);
  });
});

describe('an unreachable server exits 1 within 15 s with one line naming it', () => {
  const expectUnreachable = (result: Awaited<ReturnType<typeof runCli>>, server: string, address: string) => {
    expect(result.code).toBe(1);
    expect(result.ms).toBeLessThan(15_000);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(server);
    expect(lines[0]).toContain(address);
    expect(result.stderr).not.toMatch(STACK_FRAME);
  };

  it('consume against a dead broker port', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    expectUnreachable(await runCli(['consume', '--topic', 't', '--brokers', address]), 'Kafka', address);
  });

  it('produce against a dead broker port', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    expectUnreachable(
      await runCli(['produce', '--topic', 't', '--count', '1', '--brokers', address]),
      'Kafka',
      address,
    );
  });

  it('work against a dead broker port', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    expectUnreachable(await runCli(['work', '--group', 'g', '--topic', 't', '--brokers', address]), 'Kafka', address);
  });

  it('work against a dead ZooKeeper port', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    expectUnreachable(await runCli(['work', '--group', 'g', '--topic', 't', '--zk', address]), 'ZooKeeper', address);
  });

  it('allocation against a dead etcd port', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    expectUnreachable(
      await runCli(['allocation', '--group', 'g', '--backend', 'etcd', '--etcd', address]),
      'etcd',
      address,
    );
  });
});
