// npm run bench:consume — kiel against the strongest Node Kafka consumers, on Node 24 and Node 20, in one run.
//
// For each workload it fills a fresh topic once with kcat, then reads it from the beginning with fresh processes:
//   kiel           SingleConsumer, eachBatch (consume-worker.js)
//   kiel consume   the CLI as a new user runs it: `kiel consume --from beginning --count N --format value`
//   kafkajs        2.2.4, eachBatch
//   platformatic   @platformatic/kafka 2.12.1, consume({ mode: 'earliest' }) + 'data' events (Node >= 22.22)
//   kafka-crab-js  5.0.0 (librdkafka), createConsumer() + recvBatch(4096, 2) (Node 24 only)
//   kcat           Debian's kcat 1.7 (librdkafka), `-C -o beginning -c N -e -q`
// Every Node consumer's worker does the same work per batch, written to stdout (/dev/null), and exits after N messages
// (see consume-worker.js): OUTPUT=string (the default, issue 18's workload) turns each value into a JS string and
// writes the batch's text; OUTPUT=bytes copies each value's bytes and a newline into one buffer, checks it is UTF-8
// (buffer.isUtf8) and writes it. `kiel consume --format value` always prints the bytes way. Two clocks: from the first message to the Nth (msgs/s, MB/s of values, CPU seconds over that span per
// million messages), and the whole process (spawn to exit: wall time, CPU seconds from /usr/bin/time, peak RSS).
// Runs are interleaved: run 1 runs every consumer once, then run 2, and so on, after one warm-up round; medians of
// RUNS runs (3 by default). Needs the local stack (scripts/stack up); Node 24 comes from scripts/node-version.
//
// Environment:
//   WORKLOAD=0,2     only these workloads, in this order (indexes into ALL_WORKLOADS below)
//   NODES=24,20      Node versions to run the Node consumers on (24 via scripts/node-version; 20 = the machine's)
//   IMPLS=kiel,...   only these consumers (names as in the list above, kafka-crab-js as `crab`, `kiel-cli`)
//   KIEL_IMPLS=kiel,kiel-message,kiel-grouped   kiel's handler paths run as workers (see consume-worker.js)
//   BASELINE_DIST=<dir of another build's packages/consumer/dist> adds each kiel worker again as `<name>@base`
//   BASELINE_CLI=<another build's apps/example/dist/cli.js> adds `kiel-cli@base`
//   CLI_NODE_FLAGS="--max-semi-space-size=2" adds `kiel-cli+flags`: the CLI under those Node flags
//   KIEL_TRACED=1    adds each kiel worker again as `<name>+traced`, a no-op subscriber on every kiel:consumer:*
//                    tracing channel (what subscribing costs)
//   KIEL_MARKER=1    adds each kiel-grouped worker again as `<name>+marker`, with poison detection on (the in-flight
//                    marker written to the backend before every batch): what the marker costs
//   KIEL_GROUPED_BACKEND=zk|etcd   kiel-grouped on the local ZooKeeper or etcd instead of the in-memory backend
//   RUNS=3           measured runs after the warm-up
//   WARMUP=1         warm-up rounds (0 skips it: the topic kcat just wrote is in the page cache anyway)
'use strict';

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '../../..');
const brokers = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';
const kcat = require('../../../scripts/stack').fetchKcat();
const RUNS = Number(process.env.RUNS ?? 3);
const WARMUP = Number(process.env.WARMUP ?? 1);
const only = process.env.WORKLOAD?.split(',');
const onlyImpls = process.env.IMPLS?.split(',');
const CLI = path.join(ROOT, 'apps/example/dist/cli.js');

const ALL_WORKLOADS = [
  { name: '2,000,000 x 100 B, 6 partitions', messages: 2_000_000, size: 100, partitions: 6 },
  { name: '400,000 x 1 KiB, 6 partitions', messages: 400_000, size: 1024, partitions: 6 },
  { name: '2,000,000 x 100 B, 24 partitions', messages: 2_000_000, size: 100, partitions: 24 },
  {
    name: '400,000 x 1 KiB, 6 partitions, lz4',
    messages: 400_000,
    size: 1024,
    partitions: 6,
    codec: 'lz4',
    text: true,
  },
  {
    name: '400,000 x 1 KiB, 6 partitions, zstd',
    messages: 400_000,
    size: 1024,
    partitions: 6,
    codec: 'zstd',
    text: true,
  },
  {
    name: '2,000,000 x 100 B, 6 partitions, lz4',
    messages: 2_000_000,
    size: 100,
    partitions: 6,
    codec: 'lz4',
    text: true,
  },
  {
    name: '2,000,000 x 100 B, 6 partitions, zstd',
    messages: 2_000_000,
    size: 100,
    partitions: 6,
    codec: 'zstd',
    text: true,
  },
];
// WORKLOAD=1,0 runs the 1 KiB workload first: in the order given.
const SELECTED = only === undefined ? ALL_WORKLOADS : only.map((i) => ALL_WORKLOADS[Number(i)]).filter(Boolean);

function nodeBinary(major) {
  if (process.versions.node.split('.')[0] === major) return process.execPath;
  if (major === '20') {
    const r = spawnSync('sh', ['-c', 'command -v node'], { encoding: 'utf8' });
    const bin = r.stdout.trim();
    const v = spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.trim();
    if (!v.startsWith('v20.')) throw new Error(`the machine's node is ${v}, not 20`);
    return bin;
  }
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/node-version'), major], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`scripts/node-version ${major} failed`);
  return r.stdout.trim();
}

function sh(cmd, args, input) {
  const r = spawnSync(cmd, args, { input, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.toString();
}

function admin() {
  const { Kafka, logLevel } = require('kafkajs');
  return new Kafka({ clientId: 'bench', brokers: brokers.split(','), logLevel: logLevel.NOTHING }).admin();
}

/** Text values for the compressed topics: words from a small vocabulary, about 3x compressible, like logs. */
function textValue(size, seed) {
  const words = ['order', 'user', 'id', 'total', 'status', 'shipped', 'pending', 'eur', 'item', 'qty', 'sku'];
  let x = seed * 2654435761 + 1;
  let s = '';
  while (s.length < size) {
    x = (x * 1103515245 + 12345) % 2147483648;
    s += (x & 1 ? words[x % words.length] : (x % 100000).toString(36)) + ' ';
  }
  return s.slice(0, size);
}

async function fill(w) {
  const topic = `bench-consume-${w.size}-${w.partitions}-${w.codec ?? 'none'}-${Date.now()}`;
  const a = admin();
  await a.connect();
  await a.createTopics({ topics: [{ topic, numPartitions: w.partitions }], waitForLeaders: true });
  await a.disconnect();
  const chunk = 50_000;
  const plain = 'x'.repeat(w.size) + '\n';
  const text = w.text ? Array.from({ length: 1000 }, (_, i) => textValue(w.size, i) + '\n').join('') : '';
  const args = ['-P', '-b', brokers, '-t', topic, '-X', 'linger.ms=20', '-X', 'batch.num.messages=10000'];
  if (w.codec) args.push('-z', w.codec);
  for (let sent = 0; sent < w.messages; sent += chunk) {
    const n = Math.min(chunk, w.messages - sent);
    sh(
      kcat,
      args,
      w.text
        ? text
            .repeat(Math.ceil(n / 1000))
            .split('\n', n)
            .join('\n') + '\n'
        : plain.repeat(n),
    );
  }
  return topic;
}

async function dropTopic(topic) {
  const a = admin();
  await a.connect();
  await a.deleteTopics({ topics: [topic] }).catch(() => {});
  await a.disconnect();
}

/**
 * Runs one process under /usr/bin/time with stdout on /dev/null. A worker reports its from-first-message figures
 * on fd 3; the whole process is timed here (spawn to exit) and by /usr/bin/time (CPU, peak RSS).
 */
function runTimed(label, argv, expected, { env = {}, pipeStdout = false } = {}) {
  return new Promise((resolve, reject) => {
    const timeFile = path.join(os.tmpdir(), `bench-consume-${process.pid}-${Math.random().toString(36).slice(2)}`);
    const devnull = fs.openSync('/dev/null', 'w');
    const started = performance.now();
    const child = spawn('/usr/bin/time', ['-f', '%U %S %M', '-o', timeFile, ...argv], {
      stdio: ['ignore', pipeStdout ? 'pipe' : devnull, 'inherit', 'pipe'],
      env: { ...process.env, ...env },
    });
    fs.closeSync(devnull);
    let report = '';
    child.stdio[3].on('data', (c) => (report += c));
    // kcat: the first and Nth message as seen on its stdout.
    let first = 0;
    let last = 0;
    let lines = 0;
    let bytes = 0;
    if (pipeStdout) {
      child.stdout.on('data', (chunk) => {
        const now = performance.now();
        if (first === 0) first = now;
        bytes += chunk.length;
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
        if (lines >= expected && last === 0) last = now;
      });
    }
    child.on('exit', (code) => {
      const wallMs = performance.now() - started;
      const timed = fs.existsSync(timeFile) ? fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop() : '';
      fs.rmSync(timeFile, { force: true });
      if (code !== 0) return reject(new Error(`${label} exited ${code}: ${timed}`));
      const [user, system, rssKiB] = timed.split(' ').map(Number);
      const whole = { wallMs, cpuSeconds: user + system, maxRssMiB: rssKiB / 1024 };
      let fromFirst;
      if (!report && !pipeStdout && !label.startsWith('kiel-cli')) {
        return reject(new Error(`${label} exited without reporting (it read nothing?)`));
      }
      if (report) fromFirst = JSON.parse(report.trim().split('\n').pop());
      else if (pipeStdout) {
        if (lines < expected) return reject(new Error(`${label} printed ${lines} of ${expected} messages`));
        fromFirst = { messages: lines, bytes: bytes - lines, ms: last - first, cpuSeconds: NaN, maxRssMiB: NaN };
      }
      if (fromFirst && fromFirst.messages < expected) {
        return reject(new Error(`${label} read ${fromFirst.messages} of ${expected}`));
      }
      resolve({ fromFirst, whole, messages: expected });
    });
  });
}

const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (n, d = 0) =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : 'n/a';

function consumers(topic, w, nodes) {
  const list = [];
  const want = (name) => onlyImpls === undefined || onlyImpls.includes(name);
  const worker = path.join(__dirname, 'consume-worker.js');
  for (const [major, bin] of nodes) {
    const n = Number(major);
    const add = (name, argv, opts) => {
      if (want(name)) list.push({ name: `${name} (node ${major})`, run: () => runTimed(name, argv, w.messages, opts) });
    };
    for (const impl of (process.env.KIEL_IMPLS ?? 'kiel').split(',')) {
      add(impl, [bin, worker, impl, brokers, topic, String(w.messages)]);
      if (process.env.BASELINE_DIST) {
        add(`${impl}@base`, [bin, worker, impl, brokers, topic, String(w.messages)], {
          env: { KIEL_DIST: process.env.BASELINE_DIST },
        });
      }
      if (process.env.KIEL_TRACED === '1') {
        add(`${impl}+traced`, [bin, worker, impl, brokers, topic, String(w.messages)], { env: { KIEL_TRACE: '1' } });
      }
      if (process.env.KIEL_MARKER === '1' && impl === 'kiel-grouped') {
        add(`${impl}+marker`, [bin, worker, impl, brokers, topic, String(w.messages)], { env: { KIEL_POISON: '1' } });
      }
    }
    const cliArgs = (cli) => [
      bin,
      cli,
      'consume',
      '--brokers',
      brokers,
      '--topic',
      topic,
      '--from',
      'beginning',
      '--count',
      String(w.messages),
      '--format',
      'value',
    ];
    add('kiel-cli', cliArgs(CLI));
    if (process.env.BASELINE_CLI) add('kiel-cli@base', cliArgs(process.env.BASELINE_CLI));
    if (process.env.CLI_NODE_FLAGS) {
      const [node, ...rest] = cliArgs(CLI);
      add('kiel-cli+flags', [node, ...process.env.CLI_NODE_FLAGS.split(' '), ...rest]);
    }
    add('kafkajs', [bin, worker, 'kafkajs', brokers, topic, String(w.messages)]);
    if (n >= 22) add('platformatic', [bin, worker, 'platformatic', brokers, topic, String(w.messages)]);
    if (n >= 24) add('crab', [bin, worker, 'crab', brokers, topic, String(w.messages)]);
  }
  if (want('kcat')) {
    list.push({
      name: 'kcat',
      run: () =>
        runTimed(
          'kcat',
          [kcat, '-C', '-o', 'beginning', '-c', String(w.messages), '-e', '-q', '-b', brokers, '-t', topic],
          w.messages,
          { pipeStdout: true },
        ),
    });
  }
  return list;
}

function summarize(rs) {
  const f = rs.map((r) => r.fromFirst).filter(Boolean);
  return {
    msgsPerSec: median(f.map((r) => (r.messages / r.ms) * 1000)),
    mbPerSec: median(f.map((r) => r.bytes / r.ms / 1000)),
    cpuPerMillion: median(f.map((r) => (r.cpuSeconds / r.messages) * 1e6)),
    wallSeconds: median(rs.map((r) => r.whole.wallMs / 1000)),
    wholeMsgsPerSec: median(rs.map((r) => (r.messages / r.whole.wallMs) * 1000)),
    wholeCpuPerMillion: median(rs.map((r) => (r.whole.cpuSeconds / r.messages) * 1e6)),
    rss: median(rs.map((r) => r.whole.maxRssMiB)),
    spread: (() => {
      const walls = rs.map((r) => r.whole.wallMs);
      return walls.length > 1 ? (Math.max(...walls) - Math.min(...walls)) / median(walls) : NaN;
    })(),
  };
}

async function main() {
  const nodes = (process.env.NODES ?? '24,20').split(',').map((major) => [major, nodeBinary(major)]);
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npm run bench:consume builds it)`);
  const load = os.loadavg();
  console.log(
    `OUTPUT=${process.env.OUTPUT ?? 'string'} (the workers' work; kiel consume prints bytes); ` +
      `bench:consume on ${os.cpus()[0].model}, ${os.cpus().length} cores, load ${load.map((l) => l.toFixed(2)).join(' ')}; ` +
      `Node ${nodes.map(([, bin]) => spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.trim()).join(', ')}; ` +
      `commit ${spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim()}`,
  );
  for (const w of SELECTED) {
    process.stderr.write(`filling ${w.name}...\n`);
    const topic = await fill(w);
    try {
      const list = consumers(topic, w, nodes);
      const results = Object.fromEntries(list.map((c) => [c.name, []]));
      const failures = {};
      for (let run = 1 - WARMUP; run <= RUNS; run++) {
        for (const c of list) {
          let r;
          try {
            r = await c.run();
          } catch (err) {
            // One consumer failing (kafka-crab-js's librdkafka has no zstd) must not cost the others' figures.
            failures[c.name] = String(err.message ?? err)
              .split('\n')[0]
              .slice(0, 160);
            process.stderr.write(`  ${c.name} failed: ${failures[c.name]}\n`);
            continue;
          }
          if (run > 0) results[c.name].push(r); // runs up to 0 are warm-ups
          process.stderr.write(
            `  ${run <= 0 ? 'warm-up' : `run ${run}`} ${c.name}: whole ${fmt(r.whole.wallMs / 1000, 2)} s, ` +
              `${fmt(r.whole.cpuSeconds, 2)} CPU s` +
              (r.fromFirst ? `, from first ${fmt((r.fromFirst.messages / r.fromFirst.ms) * 1000)} msgs/s` : '') +
              '\n',
          );
        }
      }
      const summary = Object.fromEntries(
        Object.entries(results)
          .filter(([, rs]) => rs.length > 0)
          .map(([name, rs]) => [name, summarize(rs)]),
      );
      console.log(`\n${w.name} (median of ${RUNS} runs after ${WARMUP} warm-up round(s), consumers interleaved)`);
      console.log(
        '                          ------ from the first message ------   ---------- whole process ----------',
      );
      console.log(
        'consumer                      msgs/s     MB/s  CPU s/1M msgs    wall s     msgs/s  CPU s/1M msgs  RSS MiB  spread',
      );
      for (const [name, s] of Object.entries(summary)) {
        console.log(
          `${name.padEnd(24)} ${fmt(s.msgsPerSec).padStart(11)} ${fmt(s.mbPerSec, 1).padStart(8)} ${fmt(s.cpuPerMillion, 2).padStart(14)}` +
            `   ${fmt(s.wallSeconds, 2).padStart(7)} ${fmt(s.wholeMsgsPerSec).padStart(10)} ${fmt(s.wholeCpuPerMillion, 2).padStart(14)}` +
            ` ${fmt(s.rss).padStart(8)} ${fmt(s.spread * 100).padStart(6)}%`,
        );
      }
      for (const [name, why] of Object.entries(failures)) console.log(`${name} failed: ${why}`);
      for (const [major] of nodes) {
        const cli = summary[`kiel-cli (node ${major})`];
        const kiel = summary[`kiel (node ${major})`];
        const parts = [];
        for (const peer of ['kafkajs', 'platformatic', 'crab', 'kcat']) {
          const p = summary[peer === 'kcat' ? 'kcat' : `${peer} (node ${major})`];
          if (!p) continue;
          const ratios = [];
          if (cli) ratios.push(`whole ${fmt(p.wallSeconds / cli.wallSeconds, 2)}x`);
          if (kiel) ratios.push(`from first ${fmt(kiel.msgsPerSec / p.msgsPerSec, 2)}x`);
          if (cli && Number.isFinite(p.wholeCpuPerMillion))
            ratios.push(`CPU ${fmt(cli.wholeCpuPerMillion / p.wholeCpuPerMillion, 2)}x theirs`);
          parts.push(`${peer} ${ratios.join(', ')}`);
        }
        if (parts.length) console.log(`node ${major}: kiel vs ${parts.join('; ')}`);
      }
      for (const name of Object.keys(summary).filter((n) => n.includes('@base'))) {
        const now = summary[name.replace('@base', '')];
        if (!now) continue;
        console.log(
          `${name.replace('@base', '')} / baseline: ${fmt(now.msgsPerSec / summary[name].msgsPerSec, 3)}x msgs/s, ` +
            `whole process ${fmt(now.wholeCpuPerMillion / summary[name].wholeCpuPerMillion, 3)}x CPU, ` +
            `${fmt(now.wallSeconds / summary[name].wallSeconds, 3)}x wall`,
        );
      }
      for (const name of Object.keys(summary).filter((n) => n.includes('+marker'))) {
        const plain = summary[name.replace('+marker', '')];
        console.log(
          `${name} / no marker: ${fmt(summary[name].msgsPerSec / plain.msgsPerSec, 3)}x msgs/s, ` +
            `${fmt(summary[name].cpuPerMillion / plain.cpuPerMillion, 3)}x CPU per message, ` +
            `${fmt(summary[name].wholeCpuPerMillion / plain.wholeCpuPerMillion, 3)}x whole-process CPU`,
        );
      }
      for (const name of Object.keys(summary).filter((n) => n.includes('+traced'))) {
        const plain = summary[name.replace('+traced', '')];
        console.log(
          `${name} / untraced: ${fmt(summary[name].msgsPerSec / plain.msgsPerSec, 3)}x msgs/s, ` +
            `${fmt(summary[name].cpuPerMillion / plain.cpuPerMillion, 3)}x CPU per message`,
        );
      }
    } finally {
      await dropTopic(topic);
    }
  }
  console.log(
    `\nload average at the end: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
