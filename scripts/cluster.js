// The cluster stack for tests: start, kill, pause and restart its nodes, and find who leads. It wraps the same code
// as `scripts/stack ... --cluster` (in-process, no child `node` per call), has no npm dependencies, and only ever
// signals processes that scripts/stack started (pid file + command line check).
//
//   const cluster = require('../../../../scripts/cluster');
//   await cluster.ensureUp();                       // `scripts/stack up --cluster` unless every node answers
//   const { kafka, zk, etcd } = cluster.hosts();    // kafka: ['127.0.0.1:19101', ...]; zk, etcd: 'h:p,h:p,h:p'
//   const l = await cluster.kafkaLeader('t', 0);    // { node: 'kafka-2', nodeId: 2, leaderEpoch, replicas, isr }
//   await cluster.kill(l.node);                     // SIGKILL; the node stays down
//   await cluster.waitForKafkaLeader('t', 0, (x) => x.nodeId !== l.nodeId);
//   await cluster.start(l.node);                    // back, once it answers
//   await cluster.pause('zk-1'); await cluster.resume('zk-1');   // SIGSTOP / SIGCONT
//   await cluster.zkLeader(); await cluster.etcdLeader();        // 'zk-3', 'etcd-1' (undefined while none leads)
//
// Nodes: kafka-1..3, zk-1..3, etcd-1..3. Ports follow KIEL_CLUSTER_PORT_BASE (see scripts/stack --help).
'use strict';

const { spawnSync } = require('node:child_process');
const path = require('node:path');
const stack = require('./stack');

const c = stack.cluster;
const ROOT = path.resolve(__dirname, '..');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` every `intervalMs` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
async function waitFor(what, probe, timeoutMs = 30_000, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `cluster: timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`,
      );
    }
    await sleep(intervalMs);
  }
}

/** Every node runs under this checkout's scripts/stack and answers its readiness probe. */
async function allReady() {
  const states = await Promise.all(c.NODES.map(async (n) => c.readOwnedPid(n) !== undefined && (await c.ready(n))));
  return states.every(Boolean);
}

/**
 * Brings the cluster up unless every node already answers (running `scripts/stack up --cluster` in a child, so
 * its downloads and logs show). Throws when it cannot: callers must fail, never skip.
 */
async function ensureUp() {
  if (await allReady()) return;
  const r = spawnSync(process.execPath, [path.join(__dirname, 'stack'), 'up', '--cluster'], {
    stdio: ['ignore', 'inherit', 'inherit'],
    cwd: ROOT,
  });
  if (r.status !== 0 || !(await allReady())) {
    throw new Error(
      `the cluster stack is not available: scripts/stack up --cluster exited ${r.status}; read its error above`,
    );
  }
}

module.exports = {
  NODES: c.NODES,
  PORTS: c.PORTS,
  PORT_BASE: c.PORT_BASE,
  /** The cluster's data, logs and pid files (.stack/cluster/). */
  STATE: c.STATE,
  ensureUp,
  allReady,
  /** Connection strings: { kafka: ['127.0.0.1:19101', ...], zk: 'h:p,h:p,h:p', etcd: 'h:p,h:p,h:p' }. */
  hosts() {
    const h = c.hosts();
    return { kafka: h.kafka.split(','), zk: h.zk, etcd: h.etcd };
  },
  /** The address of one node's client port ('127.0.0.1:19102' for kafka-2). */
  address(node) {
    const [kind, id] = node.split('-');
    const port = { kafka: c.PORTS.kafka, zk: c.PORTS.zk, etcd: c.PORTS.etcd }[kind];
    if (!port || !c.NODES.includes(node)) throw new Error(`cluster: unknown node ${JSON.stringify(node)}`);
    return `127.0.0.1:${port(Number(id))}`;
  },
  /** Starts a stopped or killed node and resolves once it answers (a no-op when it runs). */
  start: (node) => c.start(node),
  /** Graceful stop (SIGTERM; a Kafka broker does a controlled shutdown). */
  stop: (node) => c.stop(node),
  /** stop + start. */
  async restart(node) {
    await c.stop(node);
    await c.start(node);
  },
  /** SIGKILL, a crash: resolves once the process is gone. The node stays down until start(). */
  kill: (node) => c.kill(node),
  /** SIGSTOP: the process freezes, its sockets stay open. */
  async pause(node) {
    c.signal(node, 'SIGSTOP');
  },
  /** SIGCONT. */
  async resume(node) {
    c.signal(node, 'SIGCONT');
  },
  /** 'running', 'paused' or 'stopped'. */
  state(node) {
    const pid = c.readOwnedPid(node);
    return pid === undefined ? 'stopped' : c.processState(pid);
  },
  /** The pid scripts/stack started for the node, or undefined. */
  pid: (node) => c.readOwnedPid(node),
  /** Resident memory of every running node, in MiB: { total, nodes: { 'kafka-1': 321, ... } }. */
  rss() {
    const nodes = {};
    let total = 0;
    for (const n of c.NODES) {
      const pid = c.readOwnedPid(n);
      const mib = pid === undefined ? 0 : Math.round(c.rssKiB(pid) / 1024);
      nodes[n] = mib;
      total += mib;
    }
    return { total, nodes };
  },
  /** Metadata v7 as the cluster's live brokers see it (see scripts/stack clusterKafkaMetadata). */
  kafkaMetadata: (topics) => c.kafkaMetadata(topics),
  /** The leader of a partition: { node: 'kafka-N' | undefined, nodeId, leaderEpoch, replicas, isr }. */
  kafkaLeader: (topic, partition) => c.kafkaLeader(topic, partition),
  /** The active KRaft controller ('kafka-N'). */
  async kafkaController() {
    const id = await c.kafkaController();
    return id === undefined ? undefined : `kafka-${id}`;
  },
  /** Waits until the partition's leader satisfies `accept(leader)` and returns it. */
  waitForKafkaLeader(topic, partition, accept = (l) => l.node !== undefined, timeoutMs = 30_000) {
    return waitFor(
      `a leader of ${topic}-${partition} that satisfies ${accept}`,
      async () => {
        const l = await c.kafkaLeader(topic, partition);
        return l.node !== undefined && accept(l) ? l : undefined;
      },
      timeoutMs,
      50,
    );
  },
  /**
   * Preferred (type 'preferred') or unclean ('unclean') leader election for the given partitions, through the
   * ElectLeaders API. Resolves [{ topic, partition, error, message }] (error 0 ok, 84 ELECTION_NOT_NEEDED).
   */
  electLeaders(type, partitions) {
    return c.electLeaders(type === 'unclean' ? 1 : 0, partitions);
  },
  /** The ZooKeeper server that leads the ensemble ('zk-N'), or undefined. */
  zkLeader: () => c.zkLeader(),
  /** The etcd member that leads ('etcd-N'), or undefined. */
  etcdLeader: () => c.etcdLeader(),
  waitForZkLeader: (timeoutMs = 30_000) => waitFor('a ZooKeeper leader', () => c.zkLeader(), timeoutMs),
  waitForEtcdLeader: (timeoutMs = 30_000) => waitFor('an etcd leader', () => c.etcdLeader(), timeoutMs),
  /** Waits until every node runs and answers its readiness probe (after start/resume). */
  waitAllReady: (timeoutMs = 60_000) => waitFor('every cluster node to answer', allReady, timeoutMs, 200),
  /** Runs a tool of the Kafka distribution (java -cp <kafka jars>/* <mainClass> args), synchronously. */
  kafkaTool(mainClass, args) {
    const libs = path.join(process.env.KIEL_STACK_CACHE || path.join(ROOT, '.cache', 'stack'), 'kafka-4.4.0');
    const r = spawnSync('java', ['-Xmx256m', '-XX:+UseSerialGC', '-cp', `${libs}/*`, mainClass, ...args], {
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`${mainClass} ${args.join(' ')} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  },
  waitFor,
};
