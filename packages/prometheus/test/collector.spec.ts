// KielCollector against real Kafka: a GroupedConsumer (memory backend) consumes a topic, a real HTTP endpoint serves
// prom-client's registry, the test scrapes it over TCP and parses the text exposition with an independent parser.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Kafka, logLevel } from 'kafkajs';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { Registry } from 'prom-client';
import { GroupedConsumer, MemoryBackend, MemoryStore, SingleConsumer } from '@kiel/consumer';
import { KAFKA_BROKERS, uniqueName as unique, waitFor } from '@kiel/test-kit';
import { KielCollector } from '../src';

const BROKERS = KAFKA_BROKERS;
const kafka = new Kafka({ clientId: 'kiel-prometheus-test', brokers: BROKERS, logLevel: logLevel.NOTHING });

interface Family {
  name: string;
  help: string;
  type: string;
  metrics: Array<{ value: string; labels?: Record<string, string> }>;
}

function scrape(port: number): Promise<{ contentType: string; families: Map<string, Family> }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          const families = parsePrometheusTextFormat(body) as Family[];
          resolve({
            contentType: String(res.headers['content-type']),
            families: new Map(families.map((f) => [f.name, f])),
          });
        });
      })
      .on('error', reject);
  });
}

const value = (families: Map<string, Family>, name: string, labels: Record<string, string> = {}) => {
  const family = families.get(name);
  if (!family) throw new Error(`${name} not exposed (have ${[...families.keys()].join(', ')})`);
  const series = family.metrics.filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  if (series.length !== 1) throw new Error(`${name}${JSON.stringify(labels)}: ${series.length} series`);
  return Number(series[0]!.value);
};

test('a real scrape shows lag per partition, consumed totals, commits and latencies in seconds', async () => {
  const admin = kafka.admin();
  const producer = kafka.producer();
  await admin.connect();
  await producer.connect();
  const topic = unique('kiel-prom');
  const group = unique('kiel-prom');
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  const registry = new Registry();
  const collector = new KielCollector({ registry });
  const server = http.createServer((_req, res) => {
    registry.metrics().then(
      (text) => {
        res.setHeader('Content-Type', registry.contentType);
        res.end(text);
      },
      (err: Error) => {
        res.statusCode = 500;
        res.end(err.message);
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const consumer = new GroupedConsumer<string>({
    brokers: BROKERS,
    clientId: 'billing-1',
    group,
    topics: [topic],
    backend: new MemoryBackend({ store: new MemoryStore() }),
    deserializer: 'string',
    maxWaitTime: 100,
  });
  const single = new SingleConsumer<string>({ brokers: BROKERS, clientId: 'audit', topics: [topic], from: 'end' });
  try {
    const counts = [15, 10, 5];
    await producer.send({
      topic,
      acks: -1,
      messages: counts.flatMap((n, partition) => Array.from({ length: n }, (_, i) => ({ partition, value: `v${i}` }))),
    });
    collector.add(consumer, { app: 'billing' });
    collector.add(single, { app: 'audit' });
    expect(() => collector.add(single, { other: 'x' })).toThrow(/label names/);
    let handled = 0;
    await consumer.run({
      eachBatch: async (batch) => {
        handled += batch.messages.length;
        if (handled >= 30) void consumer.stop();
      },
    });
    await consumer.commitOffsets();
    await single.connect();
    // Four more on partition 0 that nobody handles: the fetch engine still brings their high watermark.
    await producer.send({
      topic,
      acks: -1,
      messages: Array.from({ length: 4 }, () => ({ partition: 0, value: 'late' })),
    });
    await waitFor('the new high watermark', () =>
      consumer.metrics().partitions.some((p) => p.partition === 0 && p['high-watermark'] === 19),
    );

    const { contentType, families } = await scrape(port);
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const billing = { app: 'billing', group, client_id: 'billing-1' };
    expect(value(families, 'kiel_consumer_records_lag', { ...billing, topic, partition: '0' })).toBe(4);
    expect(value(families, 'kiel_consumer_records_lag', { ...billing, topic, partition: '1' })).toBe(0);
    expect(value(families, 'kiel_consumer_records_lag', { ...billing, topic, partition: '2' })).toBe(0);
    expect(value(families, 'kiel_consumer_high_watermark', { ...billing, topic, partition: '0' })).toBe(19);
    expect(families.get('kiel_consumer_records_consumed_total')!.type).toBe('COUNTER');
    expect(value(families, 'kiel_consumer_records_consumed_total', billing)).toBe(30);
    expect(value(families, 'kiel_consumer_assigned_partitions', billing)).toBe(3);
    expect(value(families, 'kiel_consumer_commit_total', billing)).toBeGreaterThan(0);
    expect(value(families, 'kiel_consumer_rebalance_total', billing)).toBeGreaterThanOrEqual(1);
    expect(value(families, 'kiel_consumer_fenced', billing)).toBe(0);
    expect(value(families, 'kiel_consumer_last_rebalance_seconds_ago', billing)).toBeGreaterThanOrEqual(0);
    // ms figures are exposed in seconds: a fetch round trip on loopback with maxWaitTime 100 ms is well below 5 s.
    const fetchLatency = value(families, 'kiel_consumer_fetch_latency_avg_seconds', billing);
    expect(fetchLatency).toBeGreaterThan(0);
    expect(fetchLatency).toBeLessThan(5);
    const commitLatency = value(families, 'kiel_consumer_commit_latency_max_seconds', billing);
    expect(commitLatency).toBeGreaterThan(0);
    expect(commitLatency).toBeLessThan(5);
    // The SingleConsumer has the consumer figures, none of the group's.
    const audit = { app: 'audit', group: '', client_id: 'audit' };
    expect(value(families, 'kiel_consumer_assigned_partitions', audit)).toBe(3);
    expect(() => value(families, 'kiel_consumer_commit_total', audit)).toThrow(/0 series/);

    // A consumer removed is gone from the next scrape.
    collector.remove(single);
    const after = await scrape(port);
    expect(() => value(after.families, 'kiel_consumer_assigned_partitions', audit)).toThrow(/0 series/);
    expect(value(after.families, 'kiel_consumer_assigned_partitions', billing)).toBe(3);

    collector.unregister();
    expect((await scrape(port)).families.has('kiel_consumer_records_lag')).toBe(false);
  } finally {
    await consumer.close();
    await single.close();
    await new Promise((resolve) => server.close(resolve));
    await producer.disconnect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
});
