// KielInstrumentation against real Kafka, with the OpenTelemetry SDK's in-memory exporters: process spans whose parent
// is the producer's context from the `traceparent` header, the handler's own spans as their children, batch spans
// linked to each record's context, poll/commit/rebalance/handoff spans, and the semantic-convention metrics.
import { ROOT_CONTEXT, SpanKind, context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type DataPoint,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { Kafka, logLevel } from 'kafkajs';
import { GroupedConsumer, MemoryBackend, MemoryStore, SingleConsumer } from '@kiel/consumer';
import { KielInstrumentation } from '../src';

const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const kafka = new Kafka({ clientId: 'kiel-otel-test', brokers: BROKERS, logLevel: logLevel.NOTHING });
const unique = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

const spanExporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] });
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const metricReader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
const meterProvider = new MeterProvider({ readers: [metricReader] });
const contextManager = new AsyncLocalStorageContextManager();
const admin = kafka.admin();
const producer = kafka.producer();
let topic: string;
/** The "producer side" span whose context travels in the first 10 records' headers. */
let sendSpan: ReturnType<ReturnType<typeof tracerProvider.getTracer>['startSpan']>;

beforeAll(async () => {
  context.setGlobalContextManager(contextManager.enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  await admin.connect();
  await producer.connect();
  topic = unique('kiel-otel');
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
  sendSpan = tracerProvider.getTracer('test').startSpan('send', { kind: SpanKind.PRODUCER });
  const carrier: Record<string, string> = {};
  propagation.inject(trace.setSpan(ROOT_CONTEXT, sendSpan), carrier);
  expect(carrier.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  sendSpan.end();
  await producer.send({
    topic,
    acks: -1,
    messages: [
      ...Array.from({ length: 10 }, (_, i) => ({ partition: 0, value: `traced-${i}`, headers: carrier })),
      ...Array.from({ length: 10 }, (_, i) => ({ partition: 1, value: `plain-${i}` })),
    ],
  });
});

afterAll(async () => {
  await producer.disconnect();
  await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin.disconnect();
  await meterProvider.shutdown();
  await tracerProvider.shutdown();
  context.disable();
  propagation.disable();
});

const attr = (span: ReadableSpan, key: string) => span.attributes[key];

async function collected(): Promise<Map<string, DataPoint<unknown>[]>> {
  metricExporter.reset();
  await metricReader.forceFlush();
  const byName = new Map<string, DataPoint<unknown>[]>();
  for (const rm of metricExporter.getMetrics()) {
    for (const sm of rm.scopeMetrics) {
      for (const m of sm.metrics) byName.set(m.descriptor.name, m.dataPoints as DataPoint<unknown>[]);
    }
  }
  return byName;
}

test('eachMessage: one process span per message, child of its traceparent; the handler runs inside it', async () => {
  spanExporter.reset();
  const instrumentation = new KielInstrumentation({ tracerProvider, meterProvider }).enable();
  const group = unique('kiel-otel');
  const consumer = new GroupedConsumer<string>({
    brokers: BROKERS,
    clientId: 'otel-member',
    group,
    topics: [topic],
    backend: new MemoryBackend({ store: new MemoryStore() }),
    deserializer: 'string',
    maxWaitTime: 100,
  });
  instrumentation.observe(consumer);
  const workSpans = new Map<string, string>();
  let handled = 0;
  try {
    await consumer.run({
      eachMessage: async (m) => {
        // A span the application starts in its handler: the process span must be its parent.
        const work = tracerProvider.getTracer('app').startSpan('work');
        workSpans.set(work.spanContext().spanId, `${m.partition}:${m.offset}`);
        await new Promise((resolve) => setImmediate(resolve));
        work.end();
        if (++handled === 20) void consumer.stop();
      },
    });
    await consumer.commitOffsets();
    // No lag left once the high watermark of both partitions is known.
    const metrics = await collected();
    const lag = metrics.get('kiel.consumer.records.lag') ?? [];
    expect(lag.map((p) => [p.attributes['messaging.destination.partition.id'], p.value]).sort()).toEqual([
      ['0', 0],
      ['1', 0],
    ]);
    expect(lag[0]!.attributes['messaging.consumer.group.name']).toBe(group);
    const consumed = metrics.get('messaging.client.consumed.messages') ?? [];
    expect(consumed.reduce((n, p) => n + (p.value as number), 0)).toBe(20);
    expect(new Set(consumed.map((p) => p.attributes['messaging.destination.partition.id']))).toEqual(
      new Set(['0', '1']),
    );
    expect(consumed.every((p) => p.attributes['messaging.system'] === 'kafka')).toBe(true);
    const processDurations = metrics.get('messaging.process.duration') ?? [];
    expect(processDurations.reduce((n, p) => n + (p.value as { count: number }).count, 0)).toBe(20);
    const operations = metrics.get('messaging.client.operation.duration') ?? [];
    const opNames = new Set(operations.map((p) => p.attributes['messaging.operation.name']));
    expect(opNames).toEqual(new Set(['poll', 'commit']));
  } finally {
    await consumer.close();
    instrumentation.disable();
  }

  const spans = spanExporter.getFinishedSpans();
  const processSpans = spans.filter((s) => s.name === `process ${topic}`);
  expect(processSpans).toHaveLength(20);
  for (const s of processSpans) {
    expect(s.kind).toBe(SpanKind.CONSUMER);
    expect(attr(s, 'messaging.system')).toBe('kafka');
    expect(attr(s, 'messaging.operation.type')).toBe('process');
    expect(attr(s, 'messaging.consumer.group.name')).toBe(group);
    expect(attr(s, 'messaging.destination.name')).toBe(topic);
    expect(attr(s, 'messaging.client.id')).toBe('otel-member');
    expect(typeof attr(s, 'messaging.kafka.offset')).toBe('number');
  }
  const traced = processSpans.filter((s) => attr(s, 'messaging.destination.partition.id') === '0');
  expect(traced).toHaveLength(10);
  for (const s of traced) {
    // Parent: the producer's span from the record's traceparent header.
    expect(s.spanContext().traceId).toBe(sendSpan.spanContext().traceId);
    expect(s.parentSpanContext?.spanId).toBe(sendSpan.spanContext().spanId);
  }
  for (const s of processSpans.filter((x) => attr(x, 'messaging.destination.partition.id') === '1')) {
    expect(s.spanContext().traceId).not.toBe(sendSpan.spanContext().traceId);
  }
  // The handler's spans are children of their message's process span.
  const byId = new Map(processSpans.map((s) => [s.spanContext().spanId, s]));
  const work = spans.filter((s) => s.name === 'work');
  expect(work).toHaveLength(20);
  for (const w of work) {
    const parent = byId.get(w.parentSpanContext?.spanId ?? '');
    expect(parent).toBeDefined();
    expect(`${attr(parent!, 'messaging.destination.partition.id')}:${attr(parent!, 'messaging.kafka.offset')}`).toBe(
      workSpans.get(w.spanContext().spanId),
    );
  }
  const polls = spans.filter((s) => s.name === 'poll');
  expect(polls.length).toBeGreaterThan(0);
  expect(polls.reduce((n, s) => n + (attr(s, 'messaging.batch.message_count') as number), 0)).toBeGreaterThanOrEqual(
    20,
  );
  expect(polls.every((s) => s.kind === SpanKind.CLIENT && attr(s, 'messaging.operation.type') === 'receive')).toBe(
    true,
  );
  const commits = spans.filter((s) => s.name === 'commit');
  expect(commits.length).toBeGreaterThan(0);
  expect(commits.every((s) => attr(s, 'messaging.operation.type') === 'settle')).toBe(true);
  const rebalances = spans.filter((s) => s.name === 'kiel rebalance');
  expect(rebalances.length).toBeGreaterThanOrEqual(1);
  expect(attr(rebalances[0]!, 'kiel.partitions.assigned')).toBe(2);
  const handoffs = spans.filter((s) => s.name === `kiel handoff ${topic}`);
  expect(handoffs.filter((s) => attr(s, 'kiel.handoff.direction') === 'assign')).toHaveLength(2);
});

test("processSpans 'batch': one span per eachBatch call, linked to each record's traceparent", async () => {
  spanExporter.reset();
  const instrumentation = new KielInstrumentation({ tracerProvider, meterProvider, processSpans: 'batch' }).enable();
  const consumer = new SingleConsumer<string>({
    brokers: BROKERS,
    topics: [topic],
    from: 'beginning',
    deserializer: 'string',
    maxWaitTime: 100,
  });
  let handled = 0;
  try {
    await consumer.run({
      eachBatch: async (batch) => {
        handled += batch.messages.length;
        if (handled >= 20) void consumer.stop();
      },
    });
  } finally {
    await consumer.close();
    instrumentation.disable();
  }
  const batches = spanExporter.getFinishedSpans().filter((s) => s.name === `process ${topic}`);
  expect(batches.reduce((n, s) => n + (attr(s, 'messaging.batch.message_count') as number), 0)).toBe(20);
  const p0 = batches.filter((s) => attr(s, 'messaging.destination.partition.id') === '0');
  expect(p0.reduce((n, s) => n + s.links.length, 0)).toBe(10);
  for (const link of p0.flatMap((s) => s.links)) expect(link.context.spanId).toBe(sendSpan.spanContext().spanId);
  const p1 = batches.filter((s) => attr(s, 'messaging.destination.partition.id') === '1');
  expect(p1.every((s) => s.links.length === 0)).toBe(true);
  // A SingleConsumer has no group.
  expect(batches.every((s) => attr(s, 'messaging.consumer.group.name') === undefined)).toBe(true);
});

test('disabled: nothing is recorded', async () => {
  spanExporter.reset();
  const instrumentation = new KielInstrumentation({ tracerProvider, meterProvider });
  instrumentation.enable();
  instrumentation.disable();
  expect(instrumentation.enabled).toBe(false);
  const consumer = new SingleConsumer<string>({
    brokers: BROKERS,
    topics: [topic],
    from: 'beginning',
    deserializer: 'string',
    maxWaitTime: 100,
  });
  let handled = 0;
  try {
    await consumer.run({
      eachMessage: async () => {
        if (++handled >= 20) void consumer.stop();
      },
    });
  } finally {
    await consumer.close();
  }
  expect(spanExporter.getFinishedSpans()).toHaveLength(0);
  expect(() => new KielInstrumentation({ processSpans: 'each' as 'batch' })).toThrow(/processSpans/);
});
