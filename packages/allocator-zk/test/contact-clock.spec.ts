// The fencing clock of ZooKeeperBackend counts contact from when a request was sent, not from when its answer was
// read: a process paused after sending (SIGSTOP, a long GC pause) must not look freshly in contact when it reads the
// old answer on waking. A proxy in front of the shared ZooKeeper holds the traffic to delay the answer.
import { performance } from 'node:perf_hooks';
import { sleep } from '@kiel/test-kit';
import { Backends, firstHost, ZooKeeperProxy, randomRoot } from './helpers';

describe('ZooKeeperBackend lastContact', () => {
  let backends: Backends;
  let proxy: ZooKeeperProxy;

  beforeEach(async () => {
    proxy = await ZooKeeperProxy.start(firstHost().port, firstHost().host);
    backends = new Backends({ hosts: proxy.hosts, rootPath: randomRoot(), operationTimeout: 5000 });
  });

  afterEach(async () => {
    proxy.thaw();
    await backends.closeAll();
    await proxy.close();
  });

  it('is the time a request was sent, not the time its delayed answer arrived', async () => {
    // Heartbeats every 2 s, `disconnected` after 3.3 s of silence: a 1.5 s hold stays below both thresholds' effects.
    const backend = await backends.open({ sessionTimeout: 10_000 });
    await backend.readRecord('contact', 'allocation');

    proxy.freeze();
    const sentAt = performance.now();
    const read = backend.readRecord('contact', 'allocation');
    await sleep(1_500);
    const thawedAt = performance.now();
    proxy.thaw();
    await read;
    const contact = backend.lastContact;

    // Every answer read now was sent before the thaw; counting from the answer would put contact after it.
    expect(contact).toBeLessThan(thawedAt);
    expect(contact).toBeGreaterThanOrEqual(sentAt - 2_100);
  });
});
