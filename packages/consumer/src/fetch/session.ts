import { FetchSession, type RequestOf } from '@kiel/protocol';

/** What the fetcher wants from one partition in the next request. */
export interface WantedPartition {
  readonly topic: string;
  readonly partition: number;
  readonly fetchOffset: number;
  readonly maxBytes: number;
  /** The leader epoch metadata gave (Fetch v9+ `currentLeaderEpoch`, for fencing), or -1. */
  readonly leaderEpoch: number;
  /** The leader epoch of the last batch fetched (Fetch v12+ `lastFetchedEpoch`, for divergence), or -1. */
  readonly lastFetchedEpoch: number;
}

type FetchRequest = RequestOf<'Fetch'>;

const MAX_EPOCH = 0x7fffffff;

const key = (topic: string, partition: number) => `${topic}\u0000${partition}`;

/**
 * Client side of an incremental fetch session (KIP-227) with one broker. The first request is a full fetch that
 * asks the broker for a session; later ones list only partitions that are new or whose offset or size changed,
 * and name the partitions to forget. The broker keeps the rest. Any session error resets to a full fetch.
 *
 * One request per session may be in flight at a time: call {@link build}, send, then {@link accept} or
 * {@link reset}.
 */
export class FetchSessionState {
  private sessionId: number = FetchSession.NO_SESSION_ID;
  private epoch: number = FetchSession.INITIAL_EPOCH;
  /** What the broker's session holds: partition → offset and size last sent. */
  private held = new Map<string, WantedPartition>();
  /** What the request in flight would make the session hold once accepted. */
  private pendingHeld: Map<string, WantedPartition> | undefined;

  /** Whether sessions are used at all (Fetch v7+). */
  constructor(private readonly enabled: boolean) {}

  /** Builds the topic and forgotten-topic lists, and the session fields, of the next request. */
  build(
    wanted: readonly WantedPartition[],
  ): Pick<FetchRequest, 'sessionId' | 'sessionEpoch' | 'topics' | 'forgottenTopicsData'> {
    const next = new Map<string, WantedPartition>();
    for (const w of wanted) next.set(key(w.topic, w.partition), w);
    this.pendingHeld = next;
    const full = !this.enabled || this.sessionId === FetchSession.NO_SESSION_ID;
    const send: WantedPartition[] = [];
    const forgotten = new Map<string, number[]>();
    if (full) {
      send.push(...wanted);
    } else {
      for (const [k, w] of next) {
        const had = this.held.get(k);
        if (
          !had ||
          had.fetchOffset !== w.fetchOffset ||
          had.maxBytes !== w.maxBytes ||
          had.leaderEpoch !== w.leaderEpoch ||
          had.lastFetchedEpoch !== w.lastFetchedEpoch
        ) {
          send.push(w);
        }
      }
      for (const [k, had] of this.held) {
        if (!next.has(k)) {
          const list = forgotten.get(had.topic) ?? [];
          list.push(had.partition);
          forgotten.set(had.topic, list);
        }
      }
    }
    return {
      sessionId: this.enabled ? this.sessionId : FetchSession.NO_SESSION_ID,
      sessionEpoch: !this.enabled ? FetchSession.FINAL_EPOCH : full ? FetchSession.INITIAL_EPOCH : this.epoch,
      topics: groupByTopic(send),
      forgottenTopicsData: [...forgotten].map(([topic, partitions]) => ({ topic, partitions })),
    };
  }

  /** The request was answered without a session error; `responseSessionId` is the response's session id. */
  accept(responseSessionId: number): void {
    if (!this.enabled) return;
    const wasFull = this.sessionId === FetchSession.NO_SESSION_ID;
    this.held = this.pendingHeld ?? this.held;
    this.pendingHeld = undefined;
    if (wasFull) {
      // The broker may decline to create a session (id 0): then every request stays a full one.
      this.sessionId = responseSessionId;
      this.epoch = 1;
      if (responseSessionId === FetchSession.NO_SESSION_ID) this.held.clear();
    } else {
      this.epoch = this.epoch >= MAX_EPOCH ? 1 : this.epoch + 1;
    }
  }

  /** Forgets the session (after a session error, a lost connection or a leader change): next is a full fetch. */
  reset(): void {
    this.sessionId = FetchSession.NO_SESSION_ID;
    this.epoch = FetchSession.INITIAL_EPOCH;
    this.held.clear();
    this.pendingHeld = undefined;
  }
}

function groupByTopic(partitions: readonly WantedPartition[]): FetchRequest['topics'] {
  const byTopic = new Map<string, FetchRequest['topics'][number]>();
  for (const w of partitions) {
    let entry = byTopic.get(w.topic);
    if (!entry) {
      entry = { topic: w.topic, partitions: [] };
      byTopic.set(w.topic, entry);
    }
    entry.partitions.push({
      partition: w.partition,
      fetchOffset: w.fetchOffset,
      partitionMaxBytes: w.maxBytes,
      currentLeaderEpoch: w.leaderEpoch,
      lastFetchedEpoch: w.lastFetchedEpoch,
    });
  }
  return [...byTopic.values()];
}
