// The harness of the PartitionAllocator unit specs: coordinators with fake handoff hooks on one MemoryStore, which
// plays the coordination server. Interleavings are forced with gates (promises the test opens), never left to timing.
import type { Assignment, Strategy } from '@kiel/allocators';
import {
  BackendErrorImpl,
  PartitionAllocator,
  MemoryBackend,
  MemoryStore,
  type HandoffHooks,
  type KielError,
  type MemoryBackendOptions,
  type PartitionAllocatorOptions,
  type TopicPartition,
} from '../../src/internal';
import { gate, sleep } from '@kiel/test-kit';

/** Polls `condition` for up to `timeoutMs` and says whether it came to hold; the caller then asserts the state. */
export async function settles(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

export const injected = (what: string) => new BackendErrorImpl('ERR_BACKEND_TIMEOUT', `injected: ${what}`);

/** Steps the fake hooks await, the way the real consumer awaits Kafka (offset lookup, commit). */
export interface Rig {
  /** Awaited by assign() before fetching starts (the consumer's committed-offset lookup). */
  assigning?: (ids: string[]) => Promise<void>;
  /** Awaited by revoke() after fetching stopped (the consumer's commit); may reject. */
  committing?: (ids: string[]) => Promise<void>;
  /** Told each time the fake consumer starts (`on`) or stops fetching a partition. */
  fetching?: (id: string, on: boolean) => void;
}

export interface StartOptions<B extends MemoryBackend> {
  Backend?: new (options: MemoryBackendOptions) => B;
  sessionTimeout?: number;
  fencingTimeout?: number;
  rig?: Rig;
  /** Passed through to the PartitionAllocator (instanceId, rebalanceDelay, maxMovesPerRebalance, ...). */
  allocator?: Partial<
    Pick<PartitionAllocatorOptions, 'instanceId' | 'rebalanceDelay' | 'initialRebalanceDelay' | 'maxMovesPerRebalance'>
  >;
}

/** One coordinator with fake hooks that record what the consumer would be doing. */
export interface TestMember<B extends MemoryBackend = MemoryBackend> {
  readonly name: string;
  readonly coordinator: PartitionAllocator;
  readonly backend: B;
  /** Partitions the fake consumer fetches: assign adds (if still owned), revoke and drop remove. */
  readonly fetching: Set<string>;
  /** Hook calls in order: `assign t:0`, `revoke t:0`, `drop t:0`, `fence true`, `fence false`. */
  readonly log: string[];
  /** Every member id it has had, oldest first (a new one per rejoin). */
  readonly ids: string[];
  readonly errors: KielError[];
}

export const idOf = ({ topic, partition }: TopicPartition) => `${topic}:${partition}`;

let groups = 0;

/**
 * A group on one MemoryStore. Its strategy deals partitions round-robin over the sorted members, except those the
 * test places on a member with `placement` (honoured while that member is in the group): the test moves a partition
 * by changing `placement` and calling `nudge()`, which adds a new partition so the leader rebalances.
 */
export class Group {
  readonly store = new MemoryStore();
  readonly name = `coordinator-${process.pid}-${++groups}-${Math.random().toString(36).slice(2, 8)}`;
  readonly placement = new Map<string, TestMember>();
  readonly members: TestMember[] = [];
  /** A plain client of the store, to look at members, records and claims as the server has them. */
  readonly observer = new MemoryBackend({ store: this.store });
  private readonly gates: Array<() => void> = [];
  private nudges = 0;

  readonly strategy: Strategy = (memberIds, partitions) => {
    const assignment: Assignment = {};
    let next = 0;
    for (const input of partitions) {
      const id = typeof input === 'string' ? input : idOf(input);
      const placed = this.placement.get(id);
      const wanted = placed?.ids.at(-1);
      const member =
        wanted !== undefined && memberIds.includes(wanted) ? wanted : memberIds[next++ % memberIds.length]!;
      const i = id.lastIndexOf(':');
      ((assignment[member] ??= {})[id.slice(0, i)] ??= []).push(Number(id.slice(i + 1)));
    }
    return assignment;
  };

  /** A gate that close() opens, so that no hook is left hanging. */
  gate(): { wait: Promise<void>; open: () => void } {
    const g = gate();
    this.gates.push(g.open);
    return g;
  }

  async start<B extends MemoryBackend = MemoryBackend>(name: string, options: StartOptions<B> = {}) {
    if (this.observer.state === 'idle') await this.observer.connect();
    const Backend = options.Backend ?? (MemoryBackend as unknown as new (o: MemoryBackendOptions) => B);
    const backend = new Backend({
      store: this.store,
      ...(options.sessionTimeout !== undefined ? { sessionTimeout: options.sessionTimeout } : {}),
    });
    const fetching = new Set<string>();
    const log: string[] = [];
    const rig = options.rig ?? {};
    const hooks: HandoffHooks = {
      async assign(partitions) {
        const ids = partitions.map(idOf);
        log.push(...ids.map((id) => `assign ${id}`));
        await rig.assigning?.(ids);
        // As the real consumer: a partition lost while its offsets were looked up is not started.
        for (const id of ids) {
          if (!coordinator.isOwned(id)) continue;
          fetching.add(id);
          rig.fetching?.(id, true);
        }
      },
      async revoke(partitions) {
        const ids = partitions.map(idOf);
        log.push(...ids.map((id) => `revoke ${id}`));
        // As the real consumer: stop fetching first, then commit (which may fail).
        for (const id of ids) if (fetching.delete(id)) rig.fetching?.(id, false);
        await rig.committing?.(ids);
      },
      drop(partitions) {
        const ids = partitions.map(idOf);
        log.push(...ids.map((id) => `drop ${id}`));
        for (const id of ids) if (fetching.delete(id)) rig.fetching?.(id, false);
      },
      fence(fenced) {
        log.push(`fence ${fenced}`);
      },
    };
    // The hooks above only run once the coordinator exists.
    const coordinator = new PartitionAllocator({
      backend,
      group: this.name,
      strategy: this.strategy,
      strategyName: 'placement',
      fencingTimeout: options.fencingTimeout,
      rejoin: true,
      hooks,
      ...options.allocator,
    });
    const member: TestMember<B> = { name, coordinator, backend, fetching, log, ids: [], errors: [] };
    coordinator.on('error', (e) => member.errors.push(e));
    coordinator.on('rejoined', ({ memberId }) => member.ids.push(memberId));
    await coordinator.start();
    member.ids.push(coordinator.memberId);
    this.members.push(member);
    return member;
  }

  /** Adds a new partition to the set (through `via`, the first member by default): the leader computes again. */
  async nudge(via: TestMember = this.members[0]!): Promise<void> {
    await via.coordinator.addPartitions([`nudge:${++this.nudges}`]);
  }

  /** The published allocation, as the server has it. */
  async allocation(): Promise<{ generation: number; members: string[]; assignment: Assignment } | undefined> {
    const record = await this.observer.readRecord(this.name, 'allocation');
    return record
      ? (JSON.parse(record.value) as { generation: number; members: string[]; assignment: Assignment })
      : undefined;
  }

  /** The member id the published allocation gives `id` to. */
  async ownerInAllocation(id: string): Promise<string | undefined> {
    const i = id.lastIndexOf(':');
    const [topic, partition] = [id.slice(0, i), Number(id.slice(i + 1))];
    const allocation = await this.allocation();
    for (const [member, topics] of Object.entries(allocation?.assignment ?? {})) {
      if (topics[topic]?.includes(partition)) return member;
    }
    return undefined;
  }

  /** Whether the published allocation gives `id` to `member` and `followers` all follow that generation. */
  async published(id: string, member: TestMember, ...followers: TestMember[]): Promise<boolean> {
    const allocation = await this.allocation();
    if (!allocation || (await this.ownerInAllocation(id)) !== member.coordinator.memberId) return false;
    return followers.every((f) => f.coordinator.currentGeneration === allocation.generation);
  }

  /** A member id as a name: `A` for A's current id, `A (earlier id)` for one A had before rejoining. */
  nameOf(memberId: string | undefined): string {
    if (memberId === undefined) return 'nobody';
    for (const m of this.members) {
      if (m.coordinator.memberId === memberId) return m.name;
      if (m.ids.includes(memberId)) return `${m.name} (earlier id)`;
    }
    return `unknown ${memberId}`;
  }

  /** Who holds the claim of `id` in the store. */
  async claimant(id: string): Promise<string> {
    const claim = await this.observer.readClaim(this.name, id);
    return claim ? this.nameOf((JSON.parse(claim.value) as { member: string }).member) : 'nobody';
  }

  async close(): Promise<void> {
    for (const open of this.gates) open();
    // A stop stuck behind a wedged handoff must not hold the suite up: the backends are closed regardless.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.members.map((m) => m.coordinator.stop().catch(() => undefined))),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, 2_000))),
    ]);
    // The bound must not outlive the suite: Jest would wait for it.
    clearTimeout(timer);
    await Promise.all([...this.members.map((m) => m.backend.close()), this.observer.close()]);
  }
}
