/**
 * No `kiel` command prints a runtime warning (`(node:1234) SomethingWarning: ...`) on the Node that runs the tests.
 * CI runs this file on Node 20 and on Node 24 (scripts/node-version); Node 24 is where kafkajs 2.2.4 used to print
 * TimeoutNegativeWarning on every produce (see src/kafkajs-fix.ts).
 */
import { fixKafkajsRequestQueue } from '../src/kafkajs-fix';
import { freePort } from '@kiel/test-kit';
import { BROKERS, ETCD, runCli, runtimeWarnings, unique, ZK } from './helpers';

const backends = ['--zk', ZK, '--etcd', ETCD];

describe(`no runtime warning on Node ${process.version}`, () => {
  const topic = unique('kiel-warnings');
  const group = unique('kiel-warnings');

  const commands: Array<[string, string[]]> = [
    ['--version', ['--version']],
    ['--help', ['--help']],
    ['produce --help', ['produce', '--help']],
    ...['none', 'gzip', 'snappy', 'lz4', 'zstd'].map((c): [string, string[]] => [
      `produce --compression ${c}`,
      ['produce', '--topic', topic, '--count', '2000', '--partitions', '3', '--compression', c, '--brokers', BROKERS],
    ]),
    ['consume', ['consume', '--topic', topic, '--from', 'beginning', '--count', '50', '--brokers', BROKERS]],
    ...['zk', 'etcd'].map((b): [string, string[]] => [
      `work --backend ${b}`,
      [
        'work',
        '--group',
        `${group}-${b}`,
        '--topic',
        topic,
        '--backend',
        b,
        '--count',
        '50',
        '--brokers',
        BROKERS,
        ...backends,
      ],
    ]),
    ...['zk', 'etcd'].map((b): [string, string[]] => [
      `allocation --backend ${b}`,
      ['allocation', '--group', `${group}-${b}`, '--backend', b, ...backends],
    ]),
  ];

  it.each(commands)('kiel %s', async (_name, args) => {
    const result = await runCli(args);
    expect({ code: result.code, warnings: runtimeWarnings(result.stderr + result.stdout) }).toEqual({
      code: 0,
      warnings: [],
    });
  });

  it('kiel produce to a broker that is not there (the retry path)', async () => {
    const port = await freePort();
    const result = await runCli(['produce', '--topic', topic, '--count', '1', '--brokers', `127.0.0.1:${port}`]);
    expect(result.code).not.toBe(0);
    expect(runtimeWarnings(result.stderr + result.stdout)).toEqual([]);
  });
});

describe('the kafkajs request-queue fix', () => {
  it('applies to the kafkajs we pin', () => {
    expect(fixKafkajsRequestQueue()).toBe(true);
  });

  it('schedules no timer when nothing waits and nothing throttles, and the same timers as kafkajs otherwise', () => {
    fixKafkajsRequestQueue();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const RequestQueue = require('kafkajs/src/network/requestQueue') as {
      prototype: { scheduleCheckPendingRequests(this: object): void };
    };
    const schedule = RequestQueue.prototype.scheduleCheckPendingRequests;
    const timeouts = jest.spyOn(global, 'setTimeout');
    try {
      const idle = { pending: [], throttledUntil: -1, throttleCheckTimeoutId: null, checkPendingRequests: jest.fn() };
      schedule.call(idle);
      expect(timeouts).not.toHaveBeenCalled(); // kafkajs 2.2.4 called setTimeout(fn, -Date.now()) here

      const waiting = { ...idle, pending: [{}] };
      schedule.call(waiting);
      expect(timeouts).toHaveBeenLastCalledWith(expect.any(Function), 10);
      clearTimeout(waiting.throttleCheckTimeoutId ?? undefined);

      const throttled = { ...idle, throttledUntil: Date.now() + 5_000 };
      schedule.call(throttled);
      const delay = timeouts.mock.lastCall?.[1] as number;
      expect(delay).toBeGreaterThan(4_000);
      expect(delay).toBeLessThanOrEqual(5_000);
      clearTimeout(throttled.throttleCheckTimeoutId ?? undefined);
    } finally {
      timeouts.mockRestore();
    }
  });
});
