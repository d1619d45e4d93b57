// The allocator's coalescing loops (reconcile, the leader's rebalance) must serve a request that arrives at any moment:
// one that came between the loop's last check and the moment the loop was marked as ended used to set a flag on a run
// that had already ended, and was lost until the next generation (a member then never reported its rebalance).
import { naive } from '@kiel/allocators';
import { MemoryBackend, MemoryStore, PartitionAllocator } from '../../src/internal';

/** The handoff's reconciliation loop (handoff.ts). */
interface ReconcileLoop {
  reconcile(): Promise<void>;
  reconcileOnce(): Promise<void>;
  reconcileAgain: boolean;
}

/** The leader's publishing loop (leader-loop.ts). */
interface PublishLoop {
  schedule(): void;
  rebalance(): Promise<void>;
  rebalanceAgain: boolean;
}

interface Loops {
  handoff: ReconcileLoop;
  leaderLoop: PublishLoop;
  leader: boolean;
}

function allocator(): PartitionAllocator {
  return new PartitionAllocator({
    backend: new MemoryBackend({ store: new MemoryStore() }),
    group: 'wakeup',
    strategy: naive,
    strategyName: 'naive',
    fencingTimeout: undefined,
    rejoin: false,
    hooks: {
      assign: async () => undefined,
      revoke: async () => undefined,
      drop: () => undefined,
      fence: () => undefined,
    },
  });
}

/** Resolves after `n` microtask hops. */
async function hops(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

describe('coalescing loops', () => {
  it.each(Array.from({ length: 10 }, (_, h) => h))(
    'reconcile() asked again %i microtask hops after the last pass began is served',
    async (h) => {
      const loops = (allocator() as unknown as Loops).handoff;
      let passes = 0;
      let asked = false;
      loops.reconcileOnce = async () => {
        passes++;
        if (!asked) {
          asked = true;
          // The second request comes while the first run winds down.
          void hops(h).then(() => loops.reconcile());
        }
      };
      void loops.reconcile();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect({ passes, pending: loops.reconcileAgain }).toEqual({ passes: 2, pending: false });
    },
  );

  it.each(Array.from({ length: 10 }, (_, h) => h))(
    "the leader's rebalance asked again %i microtask hops after the last pass began is served",
    async (h) => {
      const member = allocator() as unknown as Loops;
      member.leader = true;
      const loops = member.leaderLoop;
      let passes = 0;
      let asked = false;
      loops.rebalance = async () => {
        passes++;
        if (!asked) {
          asked = true;
          void hops(h).then(() => loops.schedule());
        }
      };
      loops.schedule();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect({ passes, pending: loops.rebalanceAgain }).toEqual({ passes: 2, pending: false });
    },
  );
});
