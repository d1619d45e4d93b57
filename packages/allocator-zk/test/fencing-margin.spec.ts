// The shared ZooKeeper grants sessions of 1 s to 10 s (its minSessionTimeout and maxSessionTimeout): a consumer that
// asks for longer gets 10 s, and a fencing timeout meant for the longer session must fail the start, not run unsafe.
import { PartitionAllocator, type HandoffHooks, type KielError } from '@kiel/consumer/internal';
import { Backends, randomRoot, removeTree } from './helpers';

const hooks: HandoffHooks = {
  assign: async () => undefined,
  revoke: async () => undefined,
  drop: () => undefined,
  fence: () => undefined,
};

describe('PartitionAllocator on ZooKeeper and the session timeout the server granted', () => {
  const root = randomRoot();
  const backends = new Backends({ rootPath: root });

  afterEach(() => backends.closeAll());
  afterAll(() => removeTree(root));

  it('fails start when the fencing timeout is not below the granted session timeout, naming both', async () => {
    const backend = backends.create({ sessionTimeout: 30_000 });
    const coordinator = new PartitionAllocator({
      backend,
      group: 'margin',
      strategy: () => ({}),
      strategyName: 'none',
      fencingTimeout: 20_000,
      rejoin: true,
      hooks,
    });
    const rejected = await coordinator.start().then(
      () => undefined,
      (err: KielError) => err,
    );
    await coordinator.stop().catch(() => undefined);
    const granted = backend.sessionTimeout;
    expect(granted).toBeLessThanOrEqual(20_000);
    expect(rejected).toMatchObject({ code: 'ERR_INVALID_CONFIG', option: 'fencingTimeout' });
    expect(rejected?.message).toContain(`20000 ms`);
    expect(rejected?.message).toContain(`${granted} ms`);
  });
});
