import { AsyncLocalStorage } from 'node:async_hooks';
import diagnosticsChannel from 'node:diagnostics_channel';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context as otelContext,
  metrics as otelMetrics,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Counter,
  type Histogram,
  type Link,
  type MeterProvider,
  type ObservableGauge,
  type ObservableResult,
  type Span,
  type TextMapGetter,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import {
  channels,
  type CommitTraceContext,
  type ConsumerMetrics,
  type FenceTraceContext,
  type FetchTraceContext,
  type HandlerTraceContext,
  type HandoffTraceContext,
  type Message,
  type MessageTraceContext,
  type RebalanceTraceContext,
  type TraceOrigin,
} from '@kiel/consumer';
import * as sc from './semconv';

/** Options of {@link KielInstrumentation}. */
export interface KielInstrumentationOptions {
  /** Where spans go. Default: the global tracer provider (`trace.setGlobalTracerProvider`, or the SDK's). */
  readonly tracerProvider?: TracerProvider;
  /** Where metrics go. Default: the global meter provider. */
  readonly meterProvider?: MeterProvider;
  /**
   * `'message'` (default): one `process` span per `eachMessage` call, whose parent is the context in the record's
   * headers (`traceparent`), and per `eachBatch` call one span linked to each record's context. `'batch'`: one span
   * per handler call in both cases (cheaper: nothing runs per message).
   */
  readonly processSpans?: 'message' | 'batch';
  /** Most links a batch span carries (one per record with a context in its headers). Default 128. */
  readonly maxLinks?: number;
}

/** Reads Kafka record headers (`{ key, value: Buffer | null }[]`) for the configured propagator. */
export const headerGetter: TextMapGetter<Message['headers']> = {
  keys: (headers) => headers.map((h) => h.key),
  get: (headers, key) => {
    for (const h of headers) if (h.key === key && h.value !== null) return h.value.toString('utf8');
    return undefined;
  },
};

const NAME = '@kiel/opentelemetry';
const VERSION = '0.1.0';

/** One subscription to a tracing channel, to undo on disable(). */
interface Subscription {
  readonly channel: string;
  readonly handlers: Parameters<ReturnType<typeof diagnosticsChannel.tracingChannel>['subscribe']>[0];
  readonly store?: AsyncLocalStorage<Context>;
}

/**
 * OpenTelemetry for kiel consumers. It subscribes to the `kiel:consumer:*` tracing channels of `@kiel/consumer` and
 * turns them into spans and metrics under the OpenTelemetry messaging semantic conventions (`messaging.system` =
 * `kafka`, `messaging.consumer.group.name`, `messaging.destination.name`, `messaging.destination.partition.id`,
 * `messaging.kafka.offset`, ...), picking up `traceparent` from record headers through the configured propagator.
 * Nothing is published (and nothing costs) until {@link enable}.
 *
 * Spans: `process <topic>` (CONSUMER) per message or batch, `poll` (CLIENT) per Fetch that brought records,
 * `commit` (CLIENT) per OffsetCommit, and `kiel rebalance`, `kiel handoff <topic>`, `kiel fenced` (INTERNAL).
 * Metrics: `messaging.client.consumed.messages`, `messaging.process.duration`, `messaging.client.operation.duration`
 * (poll, commit), `kiel.consumer.rebalance.duration`, `kiel.consumer.handoff.duration`,
 * `kiel.consumer.fenced.duration`, and `kiel.consumer.records.lag` for consumers given to {@link observe}.
 *
 * @example
 * import { KielInstrumentation } from '@kiel/opentelemetry';
 *
 * const instrumentation = new KielInstrumentation(); // global tracer and meter providers
 * instrumentation.enable();
 * instrumentation.observe(consumer); // records lag as a gauge
 */
export class KielInstrumentation {
  private readonly options: KielInstrumentationOptions;
  private tracer!: Tracer;
  private subscriptions: Subscription[] = [];
  private readonly spans = new WeakMap<object, Span>();
  private readonly starts = new WeakMap<object, number>();
  private readonly observed = new Set<{ metrics(): ConsumerMetrics }>();
  private lagGauge: ObservableGauge | undefined;
  private readonly observeLag = (result: ObservableResult) => this.collectLag(result);
  private instruments:
    | {
        consumed: Counter;
        process: Histogram;
        operation: Histogram;
        rebalance: Histogram;
        handoff: Histogram;
        fenced: Histogram;
      }
    | undefined;

  constructor(options: KielInstrumentationOptions = {}) {
    if (options.processSpans !== undefined && options.processSpans !== 'message' && options.processSpans !== 'batch') {
      throw new TypeError(`KielInstrumentation: processSpans must be 'message' or 'batch'`);
    }
    if (options.maxLinks !== undefined && !(Number.isInteger(options.maxLinks) && options.maxLinks >= 0)) {
      throw new TypeError('KielInstrumentation: maxLinks must be a non-negative integer');
    }
    this.options = options;
  }

  /** Whether it is subscribed to the channels. */
  get enabled(): boolean {
    return this.subscriptions.length > 0;
  }

  /** Subscribes to the channels: spans and metrics from now on. Idempotent. */
  enable(): this {
    if (this.enabled) return this;
    const tracerProvider = this.options.tracerProvider ?? trace.getTracerProvider();
    const meterProvider = this.options.meterProvider ?? otelMetrics.getMeterProvider();
    this.tracer = tracerProvider.getTracer(NAME, VERSION);
    const meter = meterProvider.getMeter(NAME, VERSION);
    this.instruments = {
      consumed: meter.createCounter(sc.METRIC_MESSAGING_CLIENT_CONSUMED_MESSAGES, {
        description: 'Messages handed to the application.',
        unit: '{message}',
      }),
      process: meter.createHistogram(sc.METRIC_MESSAGING_PROCESS_DURATION, {
        description: 'Duration of processing operations (a handler call).',
        unit: 's',
      }),
      operation: meter.createHistogram(sc.METRIC_MESSAGING_CLIENT_OPERATION_DURATION, {
        description: 'Duration of messaging operations initiated by the consumer (poll, commit).',
        unit: 's',
      }),
      rebalance: meter.createHistogram('kiel.consumer.rebalance.duration', {
        description: 'From seeing a new allocation until owning exactly its share.',
        unit: 's',
      }),
      handoff: meter.createHistogram('kiel.consumer.handoff.duration', {
        description: "One partition's handoff step: a revocation (commit, release) or an assignment (claim, fetch).",
        unit: 's',
      }),
      fenced: meter.createHistogram('kiel.consumer.fenced.duration', {
        description: 'Stretches without contact with the coordination backend past the fencing timeout.',
        unit: 's',
      }),
    };
    this.lagGauge = meter.createObservableGauge('kiel.consumer.records.lag', {
      description: "High watermark minus the consumer's position, per partition (consumers given to observe()).",
      unit: '{message}',
    });
    this.lagGauge.addCallback(this.observeLag);

    const perMessage = (this.options.processSpans ?? 'message') === 'message';
    // The process span is made the active context while the handler runs, so spans the handler starts are its
    // children: through the context manager's AsyncLocalStorage when it has one (the SDK's default on Node).
    const store = contextStorage();
    this.subscribe(
      channels.handler,
      {
        start: (ctx: HandlerTraceContext) => this.handlerStart(ctx, perMessage),
        asyncEnd: (ctx: HandlerTraceContext) => this.handlerEnd(ctx, perMessage),
        error: (ctx: HandlerTraceContext) => this.failed(ctx),
      },
      store && {
        store,
        transform: (ctx) =>
          this.activate(ctx as HandlerTraceContext, () => this.handlerStart(ctx as HandlerTraceContext, perMessage)),
      },
    );
    if (perMessage) {
      this.subscribe(
        channels.message,
        {
          start: (ctx: MessageTraceContext) => this.messageStart(ctx),
          asyncEnd: (ctx: MessageTraceContext) => this.messageEnd(ctx),
          error: (ctx: MessageTraceContext) => this.failed(ctx),
        },
        store && {
          store,
          transform: (ctx) =>
            this.activate(ctx as MessageTraceContext, () => this.messageStart(ctx as MessageTraceContext)),
        },
      );
    }
    this.subscribe(channels.fetch, {
      start: (ctx: FetchTraceContext) => this.starts.set(ctx, Date.now()),
      // A failed fetch is reported at asyncEnd too (its context carries the error by then).
      asyncEnd: (ctx: FetchTraceContext) => this.fetchEnd(ctx),
    });
    this.subscribe(channels.commit, {
      start: (ctx: CommitTraceContext) => this.commitStart(ctx),
      asyncEnd: (ctx: CommitTraceContext) => this.commitEnd(ctx),
      error: (ctx: CommitTraceContext) => this.failed(ctx),
    });
    this.subscribe(channels.rebalance, {
      start: (ctx: RebalanceTraceContext) => this.rebalanceStart(ctx),
      asyncEnd: (ctx: RebalanceTraceContext) => this.rebalanceEnd(ctx),
    });
    this.subscribe(channels.handoff, {
      start: (ctx: HandoffTraceContext) => this.handoffStart(ctx),
      asyncEnd: (ctx: HandoffTraceContext) => this.handoffEnd(ctx),
      error: (ctx: HandoffTraceContext) => this.failed(ctx),
    });
    this.subscribe(channels.fence, {
      start: (ctx: FenceTraceContext) => this.fenceStart(ctx),
      asyncEnd: (ctx: FenceTraceContext) => this.fenceEnd(ctx),
    });
    return this;
  }

  /** Unsubscribes from every channel (and stops observing lag). Spans still open are left unended. */
  disable(): void {
    for (const s of this.subscriptions) {
      const tc = diagnosticsChannel.tracingChannel(s.channel);
      tc.unsubscribe(s.handlers);
      if (s.store) tc.start.unbindStore(s.store);
    }
    this.subscriptions = [];
    this.lagGauge?.removeCallback(this.observeLag);
    this.lagGauge = undefined;
  }

  /** Reports a consumer's per-partition lag as the `kiel.consumer.records.lag` gauge at each collection. */
  observe(consumer: { metrics(): ConsumerMetrics }): this {
    this.observed.add(consumer);
    return this;
  }

  /** Stops reporting a consumer's lag (a closed one). */
  unobserve(consumer: { metrics(): ConsumerMetrics }): void {
    this.observed.delete(consumer);
  }

  // ---- channels ------------------------------------------------------------------------------------------

  private subscribe<C>(
    channel: string,
    handlers: { start?: (c: C) => void; asyncEnd?: (c: C) => void; error?: (c: C) => void },
    bind?: { store: AsyncLocalStorage<Context>; transform: (c: unknown) => Context } | undefined,
  ): void {
    const tc = diagnosticsChannel.tracingChannel(channel);
    const noop = () => undefined;
    const full = {
      start: (handlers.start ?? noop) as (c: unknown) => void,
      end: noop,
      asyncStart: noop,
      asyncEnd: (handlers.asyncEnd ?? noop) as (c: unknown) => void,
      error: (handlers.error ?? noop) as (c: unknown) => void,
    };
    if (bind) tc.start.bindStore(bind.store, bind.transform);
    tc.subscribe(full);
    this.subscriptions.push({ channel, handlers: full, ...(bind ? { store: bind.store } : {}) });
  }

  /** The context a traced handler runs in: its span's (made here, before `start` is published). */
  private activate(ctx: object, begin: () => void): Context {
    begin();
    const span = this.spans.get(ctx);
    return span ? trace.setSpan(otelContext.active(), span) : otelContext.active();
  }

  private handlerStart(ctx: HandlerTraceContext, perMessage: boolean): void {
    if (this.starts.has(ctx)) return;
    this.starts.set(ctx, performance.now());
    // Per-message spans cover eachMessage; its batch gets no span of its own.
    if (perMessage && ctx.kind === 'eachMessage') return;
    const messages = ctx.batch.messages;
    const links: Link[] = [];
    const max = this.options.maxLinks ?? 128;
    for (let i = 0; i < messages.length && links.length < max; i++) {
      const spanContext = trace.getSpanContext(propagation.extract(ROOT_CONTEXT, messages[i]!.headers, headerGetter));
      if (spanContext && trace.isSpanContextValid(spanContext)) links.push({ context: spanContext });
    }
    const span = this.tracer.startSpan(
      `process ${ctx.topic}`,
      {
        kind: SpanKind.CONSUMER,
        links,
        attributes: {
          ...this.common(ctx, 'process', sc.MESSAGING_OPERATION_TYPE_VALUE_PROCESS),
          [sc.ATTR_MESSAGING_DESTINATION_NAME]: ctx.topic,
          [sc.ATTR_MESSAGING_DESTINATION_PARTITION_ID]: String(ctx.partition),
          [sc.ATTR_MESSAGING_BATCH_MESSAGE_COUNT]: messages.length,
        },
      },
      otelContext.active(),
    );
    this.spans.set(ctx, span);
  }

  private handlerEnd(ctx: HandlerTraceContext, perMessage: boolean): void {
    const started = this.starts.get(ctx);
    const attributes = this.partitionAttributes(ctx, ctx.topic, ctx.partition, 'process');
    this.instruments?.consumed.add(ctx.batch.messages.length, attributes);
    if (!(perMessage && ctx.kind === 'eachMessage') && started !== undefined) {
      this.instruments?.process.record((performance.now() - started) / 1000, this.withError(ctx, attributes));
    }
    this.endSpan(ctx);
  }

  private messageStart(ctx: MessageTraceContext): void {
    if (this.starts.has(ctx)) return;
    this.starts.set(ctx, performance.now());
    // The producer's context is the parent (W3C traceparent by default, whatever propagator is configured).
    const carried = propagation.extract(ROOT_CONTEXT, ctx.message.headers, headerGetter);
    const parentSpan = trace.getSpanContext(carried);
    const parent = parentSpan && trace.isSpanContextValid(parentSpan) ? carried : otelContext.active();
    const span = this.tracer.startSpan(
      `process ${ctx.topic}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          ...this.common(ctx, 'process', sc.MESSAGING_OPERATION_TYPE_VALUE_PROCESS),
          [sc.ATTR_MESSAGING_DESTINATION_NAME]: ctx.topic,
          [sc.ATTR_MESSAGING_DESTINATION_PARTITION_ID]: String(ctx.partition),
          [sc.ATTR_MESSAGING_KAFKA_OFFSET]: ctx.offset,
        },
      },
      parent,
    );
    this.spans.set(ctx, span);
  }

  private messageEnd(ctx: MessageTraceContext): void {
    const started = this.starts.get(ctx);
    if (started !== undefined) {
      const attributes = this.partitionAttributes(ctx, ctx.topic, ctx.partition, 'process');
      this.instruments?.process.record((performance.now() - started) / 1000, this.withError(ctx, attributes));
    }
    this.endSpan(ctx);
  }

  /** A `poll` span only for fetches that brought records or failed: an idle long poll is not worth a span. */
  private fetchEnd(ctx: FetchTraceContext): void {
    const startedAt = this.starts.get(ctx);
    if (startedAt === undefined || this.spans.has(ctx)) return;
    const topics = new Set(ctx.partitions.map((p) => p.topic));
    const attributes: Attributes = this.common(ctx, 'poll', sc.MESSAGING_OPERATION_TYPE_VALUE_RECEIVE);
    if (topics.size === 1) attributes[sc.ATTR_MESSAGING_DESTINATION_NAME] = [...topics][0]!;
    const seconds = (ctx.result?.durationMs ?? Date.now() - startedAt) / 1000;
    this.instruments?.operation.record(seconds, this.withError(ctx, attributes));
    const records = ctx.result?.records ?? 0;
    if (records === 0 && ctx.error === undefined) return;
    const span = this.tracer.startSpan(
      'poll',
      {
        kind: SpanKind.CLIENT,
        startTime: startedAt,
        attributes: { ...attributes, [sc.ATTR_MESSAGING_BATCH_MESSAGE_COUNT]: records, 'kiel.broker.id': ctx.broker },
      },
      ROOT_CONTEXT,
    );
    this.spans.set(ctx, span);
    if (ctx.error !== undefined) this.failed(ctx);
    this.endSpan(ctx);
  }

  private commitStart(ctx: CommitTraceContext): void {
    this.starts.set(ctx, performance.now());
    const topics = new Set(ctx.offsets.map((o) => o.topic));
    const attributes: Attributes = {
      ...this.common(ctx, 'commit', sc.MESSAGING_OPERATION_TYPE_VALUE_SETTLE),
      [sc.ATTR_MESSAGING_BATCH_MESSAGE_COUNT]: ctx.offsets.length,
    };
    if (topics.size === 1) attributes[sc.ATTR_MESSAGING_DESTINATION_NAME] = [...topics][0]!;
    this.spans.set(ctx, this.tracer.startSpan('commit', { kind: SpanKind.CLIENT, attributes }, ROOT_CONTEXT));
  }

  private commitEnd(ctx: CommitTraceContext): void {
    const started = this.starts.get(ctx);
    if (started !== undefined) {
      this.instruments?.operation.record(
        (performance.now() - started) / 1000,
        this.withError(ctx, this.common(ctx, 'commit', sc.MESSAGING_OPERATION_TYPE_VALUE_SETTLE)),
      );
    }
    this.endSpan(ctx);
  }

  private rebalanceStart(ctx: RebalanceTraceContext): void {
    this.starts.set(ctx, performance.now());
    const span = this.tracer.startSpan(
      'kiel rebalance',
      { kind: SpanKind.INTERNAL, attributes: { ...this.origin(ctx), 'kiel.member.id': ctx.memberId } },
      ROOT_CONTEXT,
    );
    this.spans.set(ctx, span);
  }

  private rebalanceEnd(ctx: RebalanceTraceContext): void {
    const span = this.spans.get(ctx);
    const result = ctx.result;
    if (span && result) {
      span.setAttributes({
        'kiel.generation': result.generation,
        'kiel.partitions.assigned': result.assigned.length,
        'kiel.partitions.revoked': result.revoked.length,
      });
      this.instruments?.rebalance.record(result.durationMs / 1000, this.origin(ctx));
    }
    this.endSpan(ctx);
  }

  private handoffStart(ctx: HandoffTraceContext): void {
    const span = this.tracer.startSpan(
      `kiel handoff ${ctx.topic}`,
      {
        kind: SpanKind.INTERNAL,
        attributes: {
          ...this.origin(ctx),
          [sc.ATTR_MESSAGING_DESTINATION_NAME]: ctx.topic,
          [sc.ATTR_MESSAGING_DESTINATION_PARTITION_ID]: String(ctx.partition),
          'kiel.member.id': ctx.memberId,
          'kiel.generation': ctx.generation,
          'kiel.handoff.direction': ctx.direction,
        },
      },
      ROOT_CONTEXT,
    );
    this.spans.set(ctx, span);
  }

  private handoffEnd(ctx: HandoffTraceContext): void {
    const span = this.spans.get(ctx);
    const result = ctx.result;
    if (span && result) {
      span.setAttributes({ 'kiel.handoff.outcome': result.outcome, 'kiel.claim.wait_ms': result.claimWaitMs });
      if (result.outcome === 'done') {
        this.instruments?.handoff.record(result.durationMs / 1000, {
          ...this.origin(ctx),
          'kiel.handoff.direction': ctx.direction,
        });
      }
    }
    this.endSpan(ctx);
  }

  private fenceStart(ctx: FenceTraceContext): void {
    const span = this.tracer.startSpan(
      'kiel fenced',
      {
        kind: SpanKind.INTERNAL,
        attributes: { ...this.origin(ctx), 'kiel.member.id': ctx.memberId, 'kiel.fence.reason': ctx.reason },
      },
      ROOT_CONTEXT,
    );
    this.spans.set(ctx, span);
  }

  private fenceEnd(ctx: FenceTraceContext): void {
    const span = this.spans.get(ctx);
    if (span && ctx.result) {
      span.setAttribute('kiel.fence.outcome', ctx.result.outcome);
      this.instruments?.fenced.record(ctx.result.durationMs / 1000, this.origin(ctx));
    }
    this.endSpan(ctx);
  }

  // ---- helpers -------------------------------------------------------------------------------------------

  private failed(ctx: object & { error?: unknown }): void {
    const span = this.spans.get(ctx);
    if (!span || ctx.error === undefined) return;
    const error = ctx.error;
    span.recordException(error instanceof Error ? error : String(error));
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    span.setAttribute(sc.ATTR_ERROR_TYPE, errorType(error));
  }

  private endSpan(ctx: object): void {
    const span = this.spans.get(ctx);
    if (!span) return;
    this.spans.delete(ctx);
    span.end();
  }

  private origin(ctx: TraceOrigin): Attributes {
    const attributes: Attributes = {
      [sc.ATTR_MESSAGING_SYSTEM]: sc.MESSAGING_SYSTEM_VALUE_KAFKA,
      [sc.ATTR_MESSAGING_CLIENT_ID]: ctx.clientId,
    };
    if (ctx.group !== undefined) attributes[sc.ATTR_MESSAGING_CONSUMER_GROUP_NAME] = ctx.group;
    return attributes;
  }

  private common(ctx: TraceOrigin, operation: string, type: string): Attributes {
    return {
      ...this.origin(ctx),
      [sc.ATTR_MESSAGING_OPERATION_NAME]: operation,
      [sc.ATTR_MESSAGING_OPERATION_TYPE]: type,
    };
  }

  private partitionAttributes(ctx: TraceOrigin, topic: string, partition: number, operation: string): Attributes {
    return {
      ...this.origin(ctx),
      [sc.ATTR_MESSAGING_OPERATION_NAME]: operation,
      [sc.ATTR_MESSAGING_DESTINATION_NAME]: topic,
      [sc.ATTR_MESSAGING_DESTINATION_PARTITION_ID]: String(partition),
    };
  }

  private withError(ctx: { error?: unknown }, attributes: Attributes): Attributes {
    return ctx.error === undefined ? attributes : { ...attributes, [sc.ATTR_ERROR_TYPE]: errorType(ctx.error) };
  }

  private collectLag(result: ObservableResult): void {
    for (const consumer of this.observed) {
      const m = consumer.metrics();
      const group = (m as { group?: string }).group;
      for (const p of m.partitions) {
        if (Number.isNaN(p['records-lag'])) continue;
        const attributes: Attributes = {
          [sc.ATTR_MESSAGING_SYSTEM]: sc.MESSAGING_SYSTEM_VALUE_KAFKA,
          [sc.ATTR_MESSAGING_CLIENT_ID]: m.clientId,
          [sc.ATTR_MESSAGING_DESTINATION_NAME]: p.topic,
          [sc.ATTR_MESSAGING_DESTINATION_PARTITION_ID]: String(p.partition),
        };
        if (group !== undefined) attributes[sc.ATTR_MESSAGING_CONSUMER_GROUP_NAME] = group;
        result.observe(p['records-lag'], attributes);
      }
    }
  }
}

/** `error.type`: a KielError's stable code, else the error's class name. */
function errorType(error: unknown): string {
  if (error && typeof error === 'object') {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const name = (error as { constructor?: { name?: string } }).constructor?.name;
    if (name) return name;
  }
  return '_OTHER';
}

/**
 * The AsyncLocalStorage behind OpenTelemetry's active context, when the registered context manager keeps one (the
 * SDK's AsyncLocalStorageContextManager does, in a field it does not export). Binding the tracing channel's `start`
 * to it makes the process span the active context inside the handler. Undefined with any other context manager:
 * spans are still made, only not active.
 */
function contextStorage(): AsyncLocalStorage<Context> | undefined {
  const manager = (otelContext as unknown as { _getContextManager?: () => unknown })._getContextManager?.();
  const storage = (manager as { _asyncLocalStorage?: unknown } | undefined)?._asyncLocalStorage;
  return storage instanceof AsyncLocalStorage ? (storage as AsyncLocalStorage<Context>) : undefined;
}
