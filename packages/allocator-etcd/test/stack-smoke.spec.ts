// Proves the local stack's etcd works with etcd3: a key put on a lease is readable, and revoking the lease
// removes it.
import { randomUUID } from 'node:crypto';
import { Etcd3 } from 'etcd3';

const hosts = (process.env.ETCD_HOSTS ?? '127.0.0.1:2379').split(',').map((h) => `http://${h}`);

describe('local stack: etcd', () => {
  const client = new Etcd3({ hosts });

  afterAll(() => client.close());

  it('binds a key to a lease and drops it when the lease is revoked', async () => {
    const key = `kiel-smoke/${randomUUID()}`;
    const lease = client.lease(5, { autoKeepAlive: false });
    await lease.grant();
    await lease.put(key).value('hello');
    expect(await client.get(key).string()).toBe('hello');
    await lease.revoke();
    expect(await client.get(key).string()).toBeNull();
  });
});
