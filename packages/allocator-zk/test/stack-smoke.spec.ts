// Proves the local stack's ZooKeeper works with node-zookeeper-client: an ephemeral node exists while its
// session lives and is gone once the session closes.
import { randomUUID } from 'node:crypto';
import * as zookeeper from 'node-zookeeper-client';

const hosts = process.env.ZK_HOSTS ?? '127.0.0.1:2181';

function connect(): Promise<zookeeper.Client> {
  return new Promise((resolve, reject) => {
    const client = zookeeper.createClient(hosts, { sessionTimeout: 4000, retries: 0 });
    const timer = setTimeout(() => {
      client.close();
      reject(new Error(`no ZooKeeper session with ${hosts} within 10 s`));
    }, 10_000);
    client.once('connected', () => {
      clearTimeout(timer);
      resolve(client);
    });
    client.connect();
  });
}

const call = <T>(fn: (cb: (err: Error | zookeeper.Exception | null, value: T) => void) => void): Promise<T> =>
  new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));

describe('local stack: ZooKeeper', () => {
  it('keeps an ephemeral node while the session lives and drops it when the session closes', async () => {
    const path = `/kiel-smoke-${randomUUID()}`;
    const owner = await connect();
    const observer = await connect();
    try {
      await call<string>((cb) => owner.create(path, Buffer.from('hello'), zookeeper.CreateMode.EPHEMERAL, cb));
      const data = await call<Buffer>((cb) => observer.getData(path, (err, d) => cb(err, d)));
      expect(data.toString()).toBe('hello');

      let watching!: Promise<zookeeper.Stat | null>;
      const gone = new Promise<void>((resolve) => {
        watching = call<zookeeper.Stat | null>((cb) =>
          observer.exists(
            path,
            (event) => {
              if (event.getType() === zookeeper.Event.NODE_DELETED) resolve();
            },
            (err, s) => cb(err, s),
          ),
        );
      });
      // The watch must be set before the owner closes: a close that wins the race would leave an existence watch
      // that never fires.
      expect(await watching).not.toBeNull();
      owner.close();
      await gone;
      const stat = await call<zookeeper.Stat | null>((cb) => observer.exists(path, (err, s) => cb(err, s)));
      expect(stat).toBeNull();
    } finally {
      owner.close();
      observer.close();
    }
  });
});
