// The watch's self-check (KeyWatch's checkEveryMs): pure logic, against a fake host whose stream can be muted.
// A real etcd member that stops delivering on an open stream cannot be made to order; the soak saw it once after a
// quorum loss (two members kept an old allocation for 35 s). The integration and cluster suites run the same check
// against real etcd servers, where it must never fire on a healthy watch.
import { EventEmitter } from 'node:events';
import type { IKeyValue, IWatchRequest, IWatchResponse } from 'etcd3';
import { KeyWatch } from '../src/watch';
import type { WatchHost } from '../src/watch';
import { waitFor } from '@kiel/test-kit';

/** A watch stream: answers each create with `created`, and passes events on unless muted. */
class FakeStream extends EventEmitter {
  muted = false;
  ended = false;
  /** Events arrive this long after the write (0: at once). */
  delayMs = 0;
  readonly requests: IWatchRequest[] = [];

  write(request: IWatchRequest): void {
    this.requests.push(request);
    if (request.create_request) setImmediate(() => this.emit('data', response({ created: true })));
  }

  push(events: Array<{ revision: number; value: string }>): void {
    if (this.muted || this.ended) return;
    const emit = () => {
      if (this.muted || this.ended) return;
      this.emit(
        'data',
        response({
          events: events.map((e) => ({ type: 'Put', kv: kv(e.value, e.revision) })) as IWatchResponse['events'],
        }),
      );
    };
    if (this.delayMs > 0) setTimeout(emit, this.delayMs);
    else emit();
  }

  end(): void {
    this.ended = true;
  }

  cancel(): void {
    this.ended = true;
  }
}

function kv(value: string, revision: number): IKeyValue {
  return {
    key: Buffer.from('record'),
    value: Buffer.from(value),
    mod_revision: String(revision),
    create_revision: '1',
    version: '1',
    lease: '0',
  };
}

function response(fields: Partial<IWatchResponse>): IWatchResponse {
  return {
    header: { revision: '0', cluster_id: '0', member_id: '0', raft_term: '0' },
    watch_id: '0',
    created: false,
    canceled: false,
    compact_revision: '0',
    cancel_reason: '',
    fragment: false,
    events: [],
    ...fields,
  } as IWatchResponse;
}

/** The store: one key, its value and revision; the host reads it and opens fake streams on it. */
function setup(checkEveryMs: number | undefined) {
  const store = { value: 'v1', revision: 5 };
  const streams: FakeStream[] = [];
  const delivered: string[] = [];
  const host: WatchHost = {
    range: async () => ({ kvs: [kv(store.value, store.revision)], revision: BigInt(store.revision) }),
    probe: async (_key, _end, _location, after) => ({
      count: 1,
      changed: BigInt(store.revision) > after ? 1 : 0,
      revision: BigInt(store.revision),
    }),
    openStream: async () => {
      const stream = new FakeStream();
      streams.push(stream);
      return stream as never;
    },
    refreshAuth: async () => undefined,
    reportError: (error) => {
      throw error;
    },
  };
  const watch = new KeyWatch(host, {
    key: Buffer.from('record'),
    location: 'record',
    deliver: (kvs) => delivered.push(kvs.map((k) => k.value.toString()).join(',')),
    checkEveryMs,
  });
  /** A write to the store: the current stream sees it unless muted. */
  const write = (value: string) => {
    store.revision++;
    store.value = value;
    streams[streams.length - 1]!.push([{ revision: store.revision, value }]);
  };
  return { watch, streams, delivered, write };
}

describe('KeyWatch self-check', () => {
  it('re-creates a watch whose open stream stops delivering, and delivers the state it missed', async () => {
    const { watch, streams, delivered, write } = setup(100);
    watch.start();
    try {
      await waitFor('the first delivery', () => delivered.length === 1, 5_000);
      write('v2');
      expect(delivered).toEqual(['v1', 'v2']);
      streams[0]!.muted = true;
      write('v3');
      expect(delivered).toEqual(['v1', 'v2']);
      // Two checks: the first sees the change and waits, the second finds the watch still short of it.
      await waitFor('v3 to be delivered', () => delivered.includes('v3'), 5_000);
      expect(streams).toHaveLength(2);
      expect(streams[0]!.ended).toBe(true);
      // The new watch starts from the current revision and delivers again what it reads, then later writes.
      write('v4');
      expect(delivered[delivered.length - 1]).toBe('v4');
    } finally {
      watch.stop();
    }
  });

  it('leaves a healthy watch alone, also when checks see events still on their way', async () => {
    const { watch, streams, delivered, write } = setup(50);
    watch.start();
    try {
      await waitFor('the first delivery', () => delivered.length === 1, 5_000);
      streams[0]!.delayMs = 5;
      for (let i = 0; i < 100; i++) {
        write(`w${i}`);
        await new Promise((resolve) => setTimeout(resolve, 3));
      }
      await waitFor('w99 to be delivered last', () => delivered[delivered.length - 1] === 'w99', 5_000);
      expect(streams).toHaveLength(1);
    } finally {
      watch.stop();
    }
  });

  it('does not check without checkEveryMs: a muted stream stays muted', async () => {
    const { watch, streams, delivered, write } = setup(undefined);
    watch.start();
    try {
      await waitFor('the first delivery', () => delivered.length === 1, 5_000);
      streams[0]!.muted = true;
      write('v2');
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(delivered).toEqual(['v1']);
      expect(streams).toHaveLength(1);
    } finally {
      watch.stop();
    }
  });
});
