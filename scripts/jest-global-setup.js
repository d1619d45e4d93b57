// Jest global setup for packages whose tests talk to real servers: brings the local stack up through
// scripts/stack when the servers do not already answer. A server that cannot be started fails the run:
// tests never skip because a server is missing (and in CI, CI=true, that is the rule with no exception).
// It also fetches the kcat test peer (scripts/stack kcat) and exports what `scripts/stack env` prints for every
// variable the caller did not set, so moving the stack's ports (KAFKA_PORT, ZK_PORT, ...) moves the tests with it.
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const stack = require('./stack');

function hostPort(list, fallbackPort) {
  const first = (list || '').split(',')[0].trim();
  if (!first) return { host: stack.HOST, port: fallbackPort };
  const i = first.lastIndexOf(':');
  return { host: first.slice(0, i), port: Number(first.slice(i + 1)) };
}

async function answering() {
  const kafka = hostPort(process.env.KAFKA_BROKERS, stack.PORTS.kafka);
  const zk = hostPort(process.env.ZK_HOSTS, stack.PORTS.zk);
  const etcd = hostPort(process.env.ETCD_HOSTS, stack.PORTS.etcd);
  const [k, z, e] = await Promise.all([
    stack.kafkaReady(kafka.port),
    stack.zkReady(zk.port),
    stack.etcdReady(etcd.port),
  ]);
  return { kafka: k, zk: z, etcd: e };
}

/** Sets each KAFKA_BROKERS, ZK_HOSTS, ETCD_HOSTS, KCAT, ... that is unset to what `scripts/stack env` prints. */
function exportStackEnv() {
  for (const line of stack.envLines()) {
    const m = /^export ([A-Z_]+)=(.*)$/.exec(line);
    if (m && !process.env[m[1]]) process.env[m[1]] = m[2];
  }
}

/**
 * The cluster phase (KIEL_CLUSTER_TESTS=only): brings the cluster stack up unless every node answers, and exports
 * KIEL_CLUSTER_KAFKA_BROKERS, KIEL_CLUSTER_ZK_HOSTS, KIEL_CLUSTER_ETCD_HOSTS. Fails when it cannot: never skips.
 */
async function clusterSetup() {
  for (const line of stack.cluster.envLines()) {
    const m = /^export ([A-Z_]+)=(.*)$/.exec(line);
    if (m) process.env[m[1]] = m[2];
  }
  await require('./cluster').ensureUp();
}

module.exports = async function globalSetup() {
  if (process.env.KIEL_CLUSTER_TESTS === 'only') return clusterSetup();
  exportStackEnv();
  try {
    stack.fetchKcat();
  } catch (err) {
    throw new Error(`kcat, a test peer, is not available: ${err instanceof Error ? err.message : String(err)}`);
  }
  const before = await answering();
  if (before.kafka && before.zk && before.etcd) return;
  const result = spawnSync(process.execPath, [path.join(__dirname, 'stack'), 'up'], { stdio: 'inherit' });
  const after = await answering();
  const missing = Object.entries(after)
    .filter(([, ok]) => !ok)
    .map(([name]) => name);
  if (result.status !== 0 || missing.length > 0) {
    throw new Error(
      `the local stack is not available (missing: ${missing.join(', ') || 'none'}; scripts/stack up exited ${result.status}). ` +
        'Integration tests need real Kafka, ZooKeeper and etcd; run `scripts/stack up` and read its error.',
    );
  }
};
