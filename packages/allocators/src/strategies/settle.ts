/**
 * The sticky core shared by `sticky` and `weighted`: given how many partitions each member should end up with,
 * keep every partition with its previous owner that the targets allow, and deal the rest out. Internal.
 */
import type { PartitionSet } from '../input';

/** How many previously owned partitions (still in the set) each member holds. */
export function heldCounts(previous: Int32Array, memberCount: number): Int32Array {
  const counts = new Int32Array(memberCount);
  for (let i = 0; i < previous.length; i++) if (previous[i] >= 0) counts[previous[i]]++;
  return counts;
}

/**
 * Chooses which of a member's held partitions (ascending global indexes `held[from..to)`) to keep when it may keep
 * only `keep` of them, and marks the others free (`owners[i] = -1`). Keeps an even share of each topic (water
 * filling), so that what it gives up is spread over its topics rather than being the tail of one; topics level with
 * each other take turns by member, so different members give up different topics.
 */
function release(
  set: PartitionSet,
  held: Int32Array,
  from: number,
  to: number,
  keep: number,
  member: number,
  owners: Int32Array,
): void {
  // Runs of one topic inside the held slice: [start, end) and topic index.
  const starts: number[] = [];
  const topicOf: number[] = [];
  let topic = -1;
  for (let i = from; i < to; i++) {
    const partition = held[i];
    if (topic < 0 || partition >= set.offsets[topic + 1]) {
      while (partition >= set.offsets[topic + 1]) topic++;
      starts.push(i);
      topicOf.push(topic);
    }
  }
  starts.push(to);
  const runs = topicOf.length;
  const size = (r: number): number => starts[r + 1] - starts[r];
  // Smallest level L with sum(min(size, L)) >= keep.
  let low = 0;
  let high = 0;
  for (let r = 0; r < runs; r++) high = Math.max(high, size(r));
  const kept = (level: number): number => {
    let sum = 0;
    for (let r = 0; r < runs; r++) sum += Math.min(size(r), level);
    return sum;
  };
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (kept(mid) >= keep) high = mid;
    else low = mid + 1;
  }
  const level = low;
  let extra = keep - (level > 0 ? kept(level - 1) : 0);
  for (let step = 0; step < runs; step++) {
    const r = (member + step) % runs;
    let take = Math.min(size(r), level - 1 < 0 ? 0 : level - 1);
    if (extra > 0 && size(r) >= level && level > 0) {
      take++;
      extra--;
    }
    for (let i = starts[r] + take; i < starts[r + 1]; i++) owners[held[i]] = -1;
  }
}

/**
 * Returns the owner of every partition: previous owners kept up to each member's target, then the free partitions
 * (new, orphaned or released) dealt in ascending order to the members still short, in turn. `targets` must sum to
 * `set.total`. With no previous owners this is a plain round robin over the members.
 */
export function settle(set: PartitionSet, previous: Int32Array, targets: Int32Array): Int32Array {
  const n = targets.length;
  const owners = Int32Array.from(previous);
  const counts = heldCounts(previous, n);
  // Held partitions grouped by member, ascending within each group (counting sort).
  const starts = new Int32Array(n + 1);
  for (let m = 0; m < n; m++) starts[m + 1] = starts[m] + counts[m];
  const held = new Int32Array(starts[n]);
  const fill = starts.slice(0, n);
  for (let i = 0; i < previous.length; i++) if (previous[i] >= 0) held[fill[previous[i]]++] = i;
  const deficit = new Int32Array(n);
  for (let m = 0; m < n; m++) {
    if (counts[m] > targets[m]) release(set, held, starts[m], starts[m + 1], targets[m], m, owners);
    deficit[m] = Math.max(0, targets[m] - counts[m]);
  }
  // Circular list of members still short, in sorted order.
  const next = new Int32Array(n);
  let last = -1;
  let first = -1;
  for (let m = 0; m < n; m++) {
    if (deficit[m] === 0) continue;
    if (first < 0) first = m;
    else next[last] = m;
    last = m;
  }
  if (first < 0) return owners;
  next[last] = first;
  let previousInRing = last;
  let current = first;
  for (let i = 0; i < owners.length; i++) {
    if (owners[i] >= 0) continue;
    owners[i] = current;
    if (--deficit[current] === 0) {
      if (next[current] === current) break;
      next[previousInRing] = next[current];
    } else {
      previousInRing = current;
    }
    current = next[previousInRing];
  }
  return owners;
}
