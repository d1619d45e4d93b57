// npm run bench:consume — fills topics once, then consumes them from the beginning with kiel's SingleConsumer
// (eachBatch), a kafkajs consumer group (eachBatch, fromBeginning) and `kcat -C -e -o beginning -q`, in one run.
// Prints msgs/s, MB/s, CPU seconds per million messages, peak RSS and ratios: medians of RUNS runs after a warm-up.
// The clock starts at the first message. Needs the local stack (scripts/stack up); kcat is Debian's, unpacked by
// scripts/stack into its cache (or $KCAT).
// KIEL_IMPLS=kiel,kiel-message,kiel-grouped adds kiel's other handler paths (see consume-worker.js);
// BASELINE_DIST=<dir of another build's packages/consumer/dist> adds each kiel path again as `<name>@base`,
// to compare two commits in one run. KIEL_TRACED=1 adds each kiel path again as `<name>+traced`, with a no-op
// subscriber on every kiel:consumer:* tracing channel (what subscribing costs).
'use strict';

const { spawn, spawnSync } = require('node:child_process');
const path = require('node:path');

const brokers = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';
const kcat = require('../../../scripts/stack').fetchKcat();
const RUNS = Number(process.env.RUNS ?? 3);
const only = process.env.WORKLOAD;
const WORKLOADS = [
  { name: '1,000,000 x 100 B, 6 partitions', messages: 1_000_000, size: 100, partitions: 6 },
  { name: '200,000 x 1 KiB, 6 partitions', messages: 200_000, size: 1024, partitions: 6 },
].filter((w, i) => only === undefined || String(i) === only);

function sh(cmd, args, input) {
  const r = spawnSync(cmd, args, { input, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.toString();
}

async function fill(w) {
  const topic = `bench-consume-${w.size}-${Date.now()}`;
  const { Kafka, logLevel } = require('kafkajs');
  const admin = new Kafka({ clientId: 'bench', brokers: brokers.split(','), logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: w.partitions }], waitForLeaders: true });
  await admin.disconnect();
  // kcat produces fast: one value per line, spread over the partitions.
  const line = 'x'.repeat(w.size) + '\n';
  const chunk = 50_000;
  for (let sent = 0; sent < w.messages; sent += chunk) {
    const n = Math.min(chunk, w.messages - sent);
    sh(
      kcat,
      ['-P', '-b', brokers, '-t', topic, '-X', 'linger.ms=20', '-X', 'batch.num.messages=10000'],
      line.repeat(n),
    );
  }
  return topic;
}

function runWorker(impl, topic, expected, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [path.join(__dirname, 'consume-worker.js'), impl, brokers, topic, String(expected)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, ...env },
      },
    );
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop())) : reject(new Error(`${impl} exited ${code}`)),
    );
  });
}

function runKcat(topic, expected) {
  return new Promise((resolve, reject) => {
    const args = ['-C', '-e', '-o', 'beginning', '-q', '-b', brokers, '-t', topic];
    const timed = require('node:fs').existsSync('/usr/bin/time');
    const child = timed
      ? spawn('/usr/bin/time', ['-f', '%U %S %M', kcat, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(kcat, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let first = 0;
    let last = 0;
    let messages = 0;
    let bytes = 0;
    let err = '';
    child.stdout.on('data', (chunk) => {
      if (first === 0) first = performance.now();
      last = performance.now();
      bytes += chunk.length;
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) messages++;
    });
    child.stderr.on('data', (c) => (err += c));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`kcat exited ${code}: ${err}`));
      if (messages < expected) return reject(new Error(`kcat read ${messages} of ${expected}`));
      const [user, system, rssKiB] = timed ? err.trim().split('\n').pop().split(' ').map(Number) : [NaN, NaN, NaN];
      // kcat's CPU covers its whole run (connect included): a slight handicap for it.
      resolve({
        messages,
        bytes: bytes - messages,
        ms: last - first,
        cpuSeconds: user + system,
        maxRssMiB: rssKiB / 1024,
      });
    });
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (n, d = 0) =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : 'n/a';

async function main() {
  for (const w of WORKLOADS) {
    process.stderr.write(`filling ${w.name}...\n`);
    const topic = await fill(w);
    const impls = {};
    for (const name of (process.env.KIEL_IMPLS ?? 'kiel').split(',')) {
      impls[name] = () => runWorker(name, topic, w.messages);
      if (process.env.KIEL_TRACED === '1') {
        impls[`${name}+traced`] = () => runWorker(name, topic, w.messages, { KIEL_TRACE: '1' });
      }
      if (process.env.BASELINE_DIST) {
        impls[`${name}@base`] = () => runWorker(name, topic, w.messages, { KIEL_DIST: process.env.BASELINE_DIST });
      }
    }
    impls.kafkajs = () => runWorker('kafkajs', topic, w.messages);
    impls.kcat = () => runKcat(topic, w.messages);
    const results = Object.fromEntries(Object.keys(impls).map((name) => [name, []]));
    for (let run = 0; run <= RUNS; run++) {
      for (const [name, fn] of Object.entries(impls)) {
        const r = await fn();
        if (run > 0) results[name].push(r); // run 0 is the warm-up
        process.stderr.write(
          `  ${run === 0 ? 'warm-up' : `run ${run}`} ${name}: ${fmt((r.messages / r.ms) * 1000)} msgs/s\n`,
        );
      }
    }
    const summary = Object.fromEntries(
      Object.entries(results).map(([name, rs]) => [
        name,
        {
          msgsPerSec: median(rs.map((r) => (r.messages / r.ms) * 1000)),
          mbPerSec: median(rs.map((r) => r.bytes / r.ms / 1000)),
          cpuPerMillion: median(rs.map((r) => (r.cpuSeconds / r.messages) * 1e6)),
          rss: median(rs.map((r) => r.maxRssMiB)),
        },
      ]),
    );
    console.log(`\n${w.name} (median of ${RUNS} runs after a warm-up)`);
    console.log('consumer            msgs/s        MB/s     CPU s per 1M msgs   peak RSS MiB');
    for (const [name, s] of Object.entries(summary)) {
      console.log(
        `${name.padEnd(19)} ${fmt(s.msgsPerSec).padStart(11)}  ${fmt(s.mbPerSec, 1).padStart(8)}  ${fmt(s.cpuPerMillion, 2).padStart(18)}  ${fmt(s.rss).padStart(13)}`,
      );
    }
    const k = summary.kiel ?? Object.values(summary)[0];
    console.log(
      `ratios: kiel/kafkajs ${fmt(k.msgsPerSec / summary.kafkajs.msgsPerSec, 2)}x msgs/s, ` +
        `kiel/kcat ${fmt(k.msgsPerSec / summary.kcat.msgsPerSec, 2)}x msgs/s, ` +
        `kiel CPU per message ${fmt(k.cpuPerMillion / summary.kafkajs.cpuPerMillion, 2)}x kafkajs's`,
    );
    for (const name of Object.keys(summary).filter((n) => n.endsWith('@base'))) {
      const now = summary[name.slice(0, -'@base'.length)];
      console.log(
        `${name.slice(0, -5)} / baseline: ${fmt(now.msgsPerSec / summary[name].msgsPerSec, 3)}x msgs/s, ` +
          `${fmt(now.cpuPerMillion / summary[name].cpuPerMillion, 3)}x CPU per message`,
      );
    }
    for (const name of Object.keys(summary).filter((n) => n.endsWith('+traced'))) {
      const plain = summary[name.slice(0, -'+traced'.length)];
      console.log(
        `${name} / ${name.slice(0, -7)}: ${fmt(summary[name].msgsPerSec / plain.msgsPerSec, 3)}x msgs/s, ` +
          `${fmt(summary[name].cpuPerMillion / plain.cpuPerMillion, 3)}x CPU per message`,
      );
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
