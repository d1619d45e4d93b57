// How soon a frozen etcd is noticed and a lease given up: EtcdBackend (our own clock) against etcd3's own `Lease`
// (autoKeepAlive), both on the same private etcd in the same run, TTL 2 s, over several rounds of SIGSTOP.
//
//   node -r @kiel/test-kit/register-ts bench/lease-loss.ts [rounds]
//
// Prints, per client, the median time from the freeze to "contact lost" and to "lease lost", and their ratio.
import { performance } from 'node:perf_hooks';
import { Etcd3 } from 'etcd3';
import { EtcdBackend } from '../src';
import { PrivateEtcd } from '../test/private-etcd';

const TTL_SECONDS = 2;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function when(register: (done: () => void) => void): Promise<number> {
  return new Promise((resolve) => register(() => resolve(performance.now())));
}

async function round(etcd: PrivateEtcd): Promise<{ ours: [number, number]; etcd3: [number, number] }> {
  const backend = new EtcdBackend({ hosts: etcd.hosts, ttl: TTL_SECONDS, connectTimeout: 2_000 });
  await backend.connect();
  const client = new Etcd3({ hosts: `http://${etcd.hosts}` });
  const lease = client.lease(TTL_SECONDS);
  lease.on('lost', () => undefined);
  await lease.grant();
  // Let both settle into their keepalive rhythm.
  await new Promise((resolve) => setTimeout(resolve, 1_200));

  const ourDisconnect = when((done) => backend.on('disconnected', done));
  const ourExpiry = when((done) => backend.on('expired', done));
  const theirFailure = when((done) => lease.once('keepaliveFailed', done));
  const theirLoss = when((done) => lease.once('lost', done));
  const frozenAt = performance.now();
  await etcd.pause();
  const [a, b, c, d] = await Promise.all([ourDisconnect, ourExpiry, theirFailure, theirLoss]);
  await etcd.resume();
  await backend.close();
  client.close();
  return { ours: [a - frozenAt, b - frozenAt], etcd3: [c - frozenAt, d - frozenAt] };
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 5);
  const etcd = await PrivateEtcd.start();
  const results: Array<Awaited<ReturnType<typeof round>>> = [];
  try {
    for (let i = 0; i < rounds; i++) results.push(await round(etcd));
  } finally {
    await etcd.dispose();
  }
  const ours = [median(results.map((r) => r.ours[0])), median(results.map((r) => r.ours[1]))];
  const theirs = [median(results.map((r) => r.etcd3[0])), median(results.map((r) => r.etcd3[1]))];
  console.log(
    `lease loss after SIGSTOP of etcd, TTL ${TTL_SECONDS} s, median of ${rounds} rounds (ms after the freeze)`,
  );
  console.log(`  EtcdBackend:       disconnected ${ours[0].toFixed(0)}, expired ${ours[1].toFixed(0)}`);
  console.log(`  etcd3 Lease:       keepaliveFailed ${theirs[0].toFixed(0)}, lost ${theirs[1].toFixed(0)}`);
  console.log(
    `  ratio etcd3 / ours: contact lost ${(theirs[0] / ours[0]).toFixed(2)}, lease lost ${(theirs[1] / ours[1]).toFixed(2)}`,
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
