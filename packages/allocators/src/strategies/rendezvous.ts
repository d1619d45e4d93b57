import { AllocationError } from '../errors';
import { fmix32, murmur3, murmur3Bytes, utf8 } from '../hash';
import { partitionSet, sortedMembers, toAssignment, type PartitionSet } from '../input';
import type { Assignment, MemberId, PartitionInput, Strategy } from '../types';

/** Options for {@link createRendezvous}. */
export interface RendezvousOptions {
  /**
   * Bounded load: no member gets more than `ceil(loadFactor * P / n)` partitions. A finite number ≥ 1; 1.25 is the
   * usual choice (Mirrokni, Thorup and Zadimoghaddam, "Consistent Hashing with Bounded Loads"). Omit it for plain
   * rendezvous hashing, whose balance is statistical only.
   */
  loadFactor?: number;
}

/**
 * Points per member and probes per partition. Measured: the members' shares of the hash space then differ by about
 * 3% (standard deviation) beyond chance, the same as 32 points × 21 probes (Appleton and O'Reilly's choice for one
 * point per member) at 60% of the probes.
 */
const POINTS_PER_MEMBER = 48;
const PROBES = 13;
const RING = 4294967296;
const MEMBER_SEED_A = 0x6b69656c; // "kiel"
const MEMBER_SEED_B = 0x72647676; // "rdvv"
const PARTITION_SEED = 0x70617274; // "part"
const GOLDEN = 0x9e3779b9;
const POWERS_OF_TEN = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/** The weight function's constants, for the tests that recompute it from its definition. Not exported by the package. */
export const RENDEZVOUS_PARAMETERS = {
  pointsPerMember: POINTS_PER_MEMBER,
  probes: PROBES,
  memberSeeds: [MEMBER_SEED_A, MEMBER_SEED_B],
  partitionSeed: PARTITION_SEED,
  golden: GOLDEN,
} as const;

/** Members' points on a 32-bit ring, sorted by (position, member), with a lookup table for successors. */
interface Ring {
  positions: Uint32Array;
  members: Int32Array;
  /**
   * Per slot (the top bits of a position), two entries: the index of the first point at or after the slot's start,
   * and that point's position, so most probes find their successor without reading `positions`.
   */
  table: Uint32Array;
  shift: number;
}

/**
 * Sorts points by position with two stable 16-bit counting passes (LSD radix). Points start in member order, and
 * stability keeps it among equal positions, so a tie on the ring goes to the member id that sorts first.
 */
function sortPoints(positions: Uint32Array, members: Int32Array): void {
  const count = positions.length;
  const scratchPositions = new Uint32Array(count);
  const scratchMembers = new Int32Array(count);
  const buckets = new Int32Array(65537);
  for (const shift of [0, 16]) {
    buckets.fill(0);
    for (let i = 0; i < count; i++) buckets[((positions[i] >>> shift) & 0xffff) + 1]++;
    for (let b = 1; b <= 65536; b++) buckets[b] += buckets[b - 1];
    for (let i = 0; i < count; i++) {
      const to = buckets[(positions[i] >>> shift) & 0xffff]++;
      scratchPositions[to] = positions[i];
      scratchMembers[to] = members[i];
    }
    positions.set(scratchPositions);
    members.set(scratchMembers);
  }
}

function buildRing(members: readonly string[]): Ring {
  const count = members.length * POINTS_PER_MEMBER;
  const positions = new Uint32Array(count);
  const owners = new Int32Array(count);
  members.forEach((member, m) => {
    const a = murmur3(member, MEMBER_SEED_A);
    const b = murmur3(member, MEMBER_SEED_B);
    for (let v = 0; v < POINTS_PER_MEMBER; v++) {
      positions[m * POINTS_PER_MEMBER + v] = fmix32(a ^ fmix32((b + Math.imul(v + 1, GOLDEN)) | 0));
      owners[m * POINTS_PER_MEMBER + v] = m;
    }
  });
  sortPoints(positions, owners);
  const bits = Math.min(20, Math.max(8, Math.ceil(Math.log2(count)) + 1));
  const shift = 32 - bits;
  const slots = 1 << bits;
  const table = new Uint32Array(2 * (slots + 1));
  let slot = 0;
  for (let i = 0; i < count; i++) {
    const own = positions[i] >>> shift;
    for (; slot <= own; slot++) {
      table[2 * slot] = i;
      table[2 * slot + 1] = positions[i];
    }
  }
  for (; slot <= slots; slot++) table[2 * slot] = count;
  return { positions, members: owners, table, shift };
}

/** Index of the first point at or after `position`, wrapping to 0 past the end. */
function successor(ring: Ring, position: number): number {
  const { positions } = ring;
  let i = ring.table[(position >>> ring.shift) << 1];
  while (i < positions.length && positions[i] < position) i++;
  return i === positions.length ? 0 : i;
}

function probes(base: number): Float64Array {
  const result = new Float64Array(PROBES);
  for (let k = 0; k < PROBES; k++) result[k] = fmix32(base ^ Math.imul(k + 1, GOLDEN));
  return result;
}

/**
 * Walks every member in order of its weight for one partition (best first) and returns the first that `accept`s.
 * A k-way merge of the probes' clockwise walks: a member first appears at its shortest distance, its weight.
 */
function firstAccepting(ring: Ring, base: number, accept: (member: number) => boolean): number {
  const starts = probes(base);
  const cursors = new Int32Array(PROBES);
  const steps = new Int32Array(PROBES);
  for (let k = 0; k < PROBES; k++) cursors[k] = successor(ring, starts[k]);
  const size = ring.positions.length;
  // Clockwise distance from the probe to its cursor's point; Infinity once the walk has been all the way round.
  const distance = (k: number): number => {
    if (steps[k] >= size) return Infinity;
    const d = ring.positions[cursors[k]] - starts[k];
    return d < 0 ? d + RING : d;
  };
  for (;;) {
    let best = -1;
    let bestDistance = Infinity;
    for (let k = 0; k < PROBES; k++) {
      const d = distance(k);
      if (
        d < bestDistance ||
        (d === bestDistance && best >= 0 && ring.members[cursors[k]] < ring.members[cursors[best]])
      ) {
        best = k;
        bestDistance = d;
      }
    }
    if (best < 0) return -1;
    const member = ring.members[cursors[best]];
    if (accept(member)) return member;
    cursors[best] = (cursors[best] + 1) % size;
    steps[best]++;
  }
}

/**
 * MurmurHash3 of every partition's id (`topic:partition` in UTF-8), written byte by byte into one buffer so that
 * no id string is built.
 */
function partitionHashes(set: PartitionSet): Float64Array {
  const hashes = new Float64Array(set.total);
  for (let t = 0; t < set.topics.length; t++) {
    const encoded = utf8(`${set.topics[t]}:`);
    const bytes = new Uint8Array(encoded.length + 10);
    bytes.set(encoded.bytes.subarray(0, encoded.length));
    const numbers = set.numbers[t];
    const offset = set.offsets[t];
    for (let i = 0; i < numbers.length; i++) {
      const value = numbers[i];
      let digits = 1;
      while (digits < 10 && value >= POWERS_OF_TEN[digits]) digits++;
      for (let d = encoded.length + digits - 1, rest = value; d >= encoded.length; d--, rest = (rest / 10) | 0) {
        bytes[d] = 48 + (rest % 10);
      }
      hashes[offset + i] = murmur3Bytes(bytes, encoded.length + digits, PARTITION_SEED);
    }
  }
  return hashes;
}

function allocate(members: readonly string[], set: PartitionSet, loadFactor: number | undefined): Int32Array {
  const ring = buildRing(members);
  const { positions, table, shift } = ring;
  const ringMembers = ring.members;
  const size = positions.length;
  const first = positions[0];
  const bases = partitionHashes(set);
  const owners = new Int32Array(set.total);
  const distances = new Float64Array(set.total);
  for (let p = 0; p < bases.length; p++) {
    const base = bases[p];
    let best = Infinity;
    let owner = -1;
    for (let k = 0; k < PROBES; k++) {
      const probe = fmix32(base ^ Math.imul(k + 1, GOLDEN));
      const entry = (probe >>> shift) << 1;
      let j = table[entry];
      let d: number;
      if (j < size && table[entry + 1] >= probe) {
        d = table[entry + 1] - probe;
      } else {
        while (j < size && positions[j] < probe) j++;
        if (j === size) {
          j = 0;
          d = first + RING - probe;
        } else {
          d = positions[j] - probe;
        }
      }
      // Read the member only for a candidate: most probes lose, and each read is a likely cache miss.
      if (d <= best) {
        const member = ringMembers[j];
        if (d < best || member < owner) {
          best = d;
          owner = member;
        }
      }
    }
    owners[p] = owner;
    distances[p] = best;
  }
  if (loadFactor === undefined) return owners;

  const capacity = Math.ceil((loadFactor * set.total) / members.length);
  const loads = new Int32Array(members.length);
  for (let i = 0; i < owners.length; i++) loads[owners[i]]++;
  // An overloaded member keeps the partitions it wins most clearly (shortest distance) and spills the rest.
  const over = new Map<number, number[]>();
  for (let i = 0; i < owners.length; i++) {
    if (loads[owners[i]] <= capacity) continue;
    let list = over.get(owners[i]);
    if (list === undefined) over.set(owners[i], (list = []));
    list.push(i);
  }
  const spilled: number[] = [];
  for (const [member, list] of over) {
    list.sort((a, b) => distances[a] - distances[b] || a - b);
    for (const i of list.slice(capacity)) spilled.push(i);
    loads[member] = capacity;
  }
  spilled.sort((a, b) => a - b);
  for (const i of spilled) {
    const member = firstAccepting(ring, bases[i], (m) => loads[m] < capacity);
    owners[i] = member;
    loads[member]++;
  }
  return owners;
}

/**
 * Builds a rendezvous (highest-random-weight) strategy. Each member's weight for a partition depends only on the
 * two ids, and the partition goes to the best-weighted member, so the result is stateless (no `previous` needed,
 * the same on every process) and a join or leave moves only the partitions that change hands to or from that
 * member: about `P/n`, the minimum.
 *
 * The weight is not an independent random number per pair, which would cost `n` hashes per partition (about
 * 600 ms at 1,000 members × 100,000 partitions). It is the shortest clockwise distance on a 32-bit ring from one of
 * the partition's 13 probe points (from MurmurHash3 of its id) to one of the member's 48 points (from MurmurHash3 of
 * the member id): multi-probe consistent hashing (Appleton and O'Reilly, 2015), a table look-up per probe. Smaller distance wins; ties go to
 * the member id that sorts first.
 *
 * - Balance: plain (no `loadFactor`) is statistical: each member expects `P/n` and the spread is close to
 *   binomial, with a few percent of systematic skew between members on top. With `loadFactor`, no member gets more
 *   than `ceil(loadFactor * P / n)`: an overloaded member keeps the partitions it wins by the shortest distance
 *   and the rest go, in partition order, to their next-best member with room.
 * - Movement: plain moves exactly the partitions of a leaving member, or exactly those a joining member wins.
 *   Bounded adds the few partitions whose overflow placement changes with the capacity.
 * - `context` is ignored. Zero members give an empty assignment.
 *
 * @throws {AllocationError} `ERR_INVALID_OPTION` when `loadFactor` is not a finite number ≥ 1.
 * @example const bounded = createRendezvous({ loadFactor: 1.25 });
 * bounded(['a', 'b', 'c'], ['t:0', 't:1', 't:2', 't:3']);
 */
export function createRendezvous(options: RendezvousOptions = {}): Strategy {
  const { loadFactor } = options;
  if (loadFactor !== undefined && (typeof loadFactor !== 'number' || !Number.isFinite(loadFactor) || loadFactor < 1)) {
    throw new AllocationError('ERR_INVALID_OPTION', `loadFactor ${String(loadFactor)} must be a finite number ≥ 1`, {
      item: loadFactor,
    });
  }
  return (members: readonly MemberId[], partitions: readonly PartitionInput[]): Assignment => {
    const sorted = sortedMembers(members);
    const set = partitionSet(partitions);
    if (sorted.length === 0) return {};
    return toAssignment(sorted, set, allocate(sorted, set, loadFactor));
  };
}

/**
 * Plain rendezvous hashing: stateless, moves only about `P/n` partitions on a join or leave, balance by chance
 * only. See {@link createRendezvous} for the weights and the bounded-load option.
 *
 * @example rendezvous(['a', 'b'], ['t:0', 't:1', 't:2']) // the same answer in every process, whatever the order
 */
export const rendezvous: Strategy = createRendezvous();
