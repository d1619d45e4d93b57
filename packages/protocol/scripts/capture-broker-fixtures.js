#!/usr/bin/env node
// Captures real broker responses for the flexible API versions kafkajs does not implement, as test fixtures.
// It sends the hand-written request bodies of test/fixtures/spec-requests.json (not our encoder's output) over a
// plain socket, after creating topic `kiel-fixture` with three records (k0/v0..k2/v2), and writes each response
// payload (header included) to test/fixtures/broker-responses.json. It deletes the topic and group afterwards.
// Usage: node scripts/capture-broker-fixtures.js [host:port] [output file name] [broker label]
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { Kafka, logLevel } = require('kafkajs');

const broker = process.argv[2] ?? process.env.KAFKA_BROKERS?.split(',')[0] ?? '127.0.0.1:9092';
const output = process.argv[3] ?? 'broker-responses.json';
const label = process.argv[4] ?? 'Kafka 4.4.0 (KRaft, single node)';
const API_KEYS = {
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  ApiVersions: 18,
};
const ORDER = [
  'ApiVersions v3',
  'Metadata v12',
  'FindCoordinator v4',
  'ListOffsets v7',
  'Fetch v12',
  'OffsetCommit v8',
  'OffsetFetch v7',
];
const fixtures = require('../test/fixtures/spec-requests.json').requests;

function header(apiKey, version, correlationId) {
  const clientId = Buffer.from('kiel-fixture');
  const out = Buffer.alloc(10 + clientId.length + 1);
  out.writeInt16BE(apiKey, 0);
  out.writeInt16BE(version, 2);
  out.writeInt32BE(correlationId, 4);
  out.writeInt16BE(clientId.length, 8);
  clientId.copy(out, 10);
  out[10 + clientId.length] = 0; // header v2 tagged fields
  return out;
}

function exchange(socket, payload) {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length >= 4 && buffered.length >= 4 + buffered.readInt32BE(0)) {
        socket.off('data', onData);
        resolve(buffered.subarray(4, 4 + buffered.readInt32BE(0)));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    const size = Buffer.alloc(4);
    size.writeInt32BE(payload.length);
    socket.write(Buffer.concat([size, payload]));
  });
}

async function main() {
  const kafka = new Kafka({ clientId: 'kiel-fixture', brokers: [broker], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: 'kiel-fixture', numPartitions: 1 }], waitForLeaders: true });
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic: 'kiel-fixture', messages: [0, 1, 2].map((i) => ({ key: `k${i}`, value: `v${i}` })) });
  await producer.disconnect();

  const [host, port] = broker.split(':');
  const socket = net.connect(Number(port), host);
  await new Promise((resolve) => socket.once('connect', resolve));
  const responses = {};
  let correlationId = 100;
  for (const name of ORDER) {
    const { api, version, hex } = fixtures[name];
    const payload = Buffer.concat([header(API_KEYS[api], version, ++correlationId), Buffer.from(hex, 'hex')]);
    const response = await exchange(socket, payload);
    responses[name] = { api, version, correlationId, hex: response.toString('hex') };
  }
  socket.end();
  await admin.deleteTopics({ topics: ['kiel-fixture'] });
  await admin.deleteGroups(['kiel-fixture-group']).catch(() => undefined);
  await admin.disconnect();
  const target = path.join(__dirname, '..', 'test', 'fixtures', output);
  const comment = `Responses of ${label} to spec-requests.json, captured by scripts/capture-broker-fixtures.js`;
  fs.writeFileSync(target, `${JSON.stringify({ _comment: comment, responses }, null, 2)}\n`);
  console.log(`wrote ${Object.keys(responses).length} responses to ${target}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
