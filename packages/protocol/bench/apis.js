#!/usr/bin/env node
// Micro-benchmark of the API codecs (not records) against kafkajs, in one run: median ops/s of several runs after
// a warm-up, and the ratio. Run: npm run bench:apis -w @kiel/protocol (builds dist first).
// kafkajs's encode/decode functions are async; they are awaited as kafkajs itself calls them.
const { performance } = require('node:perf_hooks');
const path = require('node:path');
const ours = require('../dist');

const kafkajs = (file) => require(`kafkajs/src/protocol/requests/${file}`);
const fixture = (name) => Buffer.from(require(path.join(__dirname, '..', 'test', 'fixtures', 'kafkajs', name)).data);

const RUNS = 7;
const WARMUP_MS = 300;
const RUN_MS = 400;

async function measure(fn) {
  const until = performance.now() + WARMUP_MS;
  // Our codecs are synchronous; kafkajs's return promises, which are awaited.
  const call = async () => {
    const result = fn();
    if (result && typeof result.then === 'function') await result;
  };
  while (performance.now() < until) await call();
  const rates = [];
  for (let run = 0; run < RUNS; run++) {
    let ops = 0;
    const start = performance.now();
    while (performance.now() - start < RUN_MS) {
      for (let i = 0; i < 100; i++) {
        const result = fn();
        if (result && typeof result.then === 'function') await result;
      }
      ops += 100;
    }
    rates.push(ops / ((performance.now() - start) / 1000));
  }
  return rates.sort((a, b) => a - b)[Math.floor(RUNS / 2)];
}

const METADATA_V5 = fixture('metadata_v5_response.json');
const OFFSET_FETCH_V3 = fixture('offsetFetch_v3_response.json');
const partitions = Array.from({ length: 50 }, (_, partition) => partition);
const cases = [
  {
    name: 'decode Metadata v5 response (3 brokers, 1 topic)',
    ours: () => ours.Metadata.v5.decode(METADATA_V5),
    theirs: () => kafkajs('metadata/v5/response').decode(METADATA_V5),
  },
  {
    name: 'encode Fetch v11 request (1 topic, 50 partitions)',
    ours: () =>
      ours.Fetch.v11.encode({
        maxWaitMs: 500,
        minBytes: 1,
        maxBytes: 52428800,
        isolationLevel: 1,
        topics: [
          {
            topic: 'bench-topic',
            partitions: partitions.map((p) => ({ partition: p, fetchOffset: 123456 + p, partitionMaxBytes: 1048576 })),
          },
        ],
      }),
    theirs: async () =>
      (
        await kafkajs('fetch/v11/request')({
          replicaId: -1,
          maxWaitTime: 500,
          minBytes: 1,
          maxBytes: 52428800,
          isolationLevel: 1,
          topics: [
            {
              topic: 'bench-topic',
              partitions: partitions.map((p) => ({ partition: p, fetchOffset: String(123456 + p), maxBytes: 1048576 })),
            },
          ],
        }).encode()
      ).buffer,
  },
  {
    name: 'decode OffsetFetch v3 response',
    ours: () => ours.OffsetFetch.v3.decode(OFFSET_FETCH_V3),
    theirs: () => kafkajs('offsetFetch/v3/response').decode(OFFSET_FETCH_V3),
  },
];

async function main() {
  for (const c of cases) {
    const oursRate = await measure(c.ours);
    const theirsRate = await measure(c.theirs);
    console.log(
      `${c.name}: @kiel/protocol ${Math.round(oursRate).toLocaleString('en')} ops/s, kafkajs ${Math.round(theirsRate).toLocaleString('en')} ops/s, ratio ${(oursRate / theirsRate).toFixed(2)}x`,
    );
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
