// Latency of the backend's calls against the same work done with a bare node-zookeeper-client, in one run.
// Usage (from the repository root): npm run bench:allocator-zk   (ZK_HOSTS, default 127.0.0.1:2181; ROUNDS, default 300)
// Prints medians and p99 in milliseconds and the ratio backend / bare client.
const { randomUUID } = require('node:crypto');
const { performance } = require('node:perf_hooks');
const zookeeper = require('node-zookeeper-client');
const { ZooKeeperBackend } = require('../dist');

const hosts = process.env.ZK_HOSTS || '127.0.0.1:2181';
const rounds = Number(process.env.ROUNDS || 300);
const root = `/kiel-bench-${randomUUID().slice(0, 8)}`;

const call = (fn) => new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function measure(run) {
  for (let i = 0; i < 20; i++) await run(i); // warm-up
  const samples = [];
  for (let i = 0; i < rounds; i++) {
    const started = performance.now();
    await run(i);
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  return { p50: quantile(samples, 0.5), p99: quantile(samples, 0.99) };
}

function rawClient() {
  return new Promise((resolve, reject) => {
    const client = zookeeper.createClient(hosts, { sessionTimeout: 10000, retries: 0 });
    const timer = setTimeout(() => reject(new Error(`no session with ${hosts}`)), 10000);
    client.once('connected', () => {
      clearTimeout(timer);
      resolve(client);
    });
    client.connect();
  });
}

// node-zookeeper-client's removeRecursive leaves grandchildren behind (NOT_EMPTY), so delete depth-first here.
async function removeTree(client, path) {
  const children = await call((cb) => client.getChildren(path, cb));
  await Promise.all(children.map((child) => removeTree(client, `${path}/${child}`)));
  await call((cb) => client.remove(path, cb));
}

async function main() {
  const backend = new ZooKeeperBackend({ hosts, rootPath: root, sessionTimeout: 10000 });
  await backend.connect();
  const raw = await rawClient();
  await call((cb) => raw.mkdirp(`${root}/raw/owners`, cb));
  // Parents of the backend's nodes exist before measuring, as they do in a running group.
  await backend.claim('bench', 'warm:0', '{}');
  await backend.release('bench', 'warm:0');
  let version = await backend.writeRecord('bench', 'allocation', '{}', null);
  const rawRecord = `${root}/raw/allocation`;
  await call((cb) => raw.create(rawRecord, Buffer.from('{}'), cb));
  let rawVersion = 0;
  const value = JSON.stringify({ member: 'bench-host:1:abc', generation: 7 });
  const record = JSON.stringify({ generation: 8, assignment: { a: ['t:0', 't:1'], b: ['t:2'] } });

  const results = [
    [
      'claim + release',
      await measure(async (i) => {
        await backend.claim('bench', `t:${i}`, value);
        await backend.release('bench', `t:${i}`);
      }),
      await measure(async (i) => {
        const path = `${root}/raw/owners/t:${i}`;
        await call((cb) => raw.create(path, Buffer.from(value), zookeeper.CreateMode.EPHEMERAL, cb));
        const stat = await call((cb) => raw.exists(path, cb));
        await call((cb) => raw.remove(path, stat.version, cb));
      }),
    ],
    [
      'compare-and-set write',
      await measure(async () => {
        version = await backend.writeRecord('bench', 'allocation', record, version);
      }),
      await measure(async () => {
        const stat = await call((cb) => raw.setData(rawRecord, Buffer.from(record), rawVersion, cb));
        rawVersion = stat.version;
      }),
    ],
    [
      'read record',
      await measure(() => backend.readRecord('bench', 'allocation')),
      await measure(() => call((cb) => raw.getData(rawRecord, cb))),
    ],
  ];

  console.log(`ZooKeeper ${hosts}, ${rounds} rounds each (ms)`);
  console.log('operation               backend p50/p99    bare client p50/p99   ratio p50');
  for (const [name, ours, peer] of results) {
    const row = [
      name.padEnd(22),
      `${ours.p50.toFixed(3)} / ${ours.p99.toFixed(3)}`.padEnd(19),
      `${peer.p50.toFixed(3)} / ${peer.p99.toFixed(3)}`.padEnd(21),
      (ours.p50 / peer.p50).toFixed(2),
    ];
    console.log(row.join(' '));
  }

  await backend.close();
  await removeTree(raw, root);
  raw.close();
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
