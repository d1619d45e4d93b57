// The record cases: create-if-absent, compare-and-set, concurrent writers, raw values, records at scale.
import { randomUUID } from 'node:crypto';
import type { VersionedRecord } from '../backend/types';
import { rendezvous, sticky, type Assignment } from '@kiel/allocators';
import {
  compareStrings,
  formatAllocation,
  formatPartitionSet,
  MAX_RECORD_BYTES,
  parseAllocation,
  parsePartitionSet,
  partitionsOf,
} from '../group/records';
import type { SuiteContext } from './harness';

/** Registers the records cases. */
export function recordCases({ runner: { describe, it, expect }, t, caseTimeout, concurrency }: SuiteContext): void {
  describe('records', () => {
    it(
      'the control record is compare-and-set like the others, and independent of them',
      async () => {
        const group = t.group();
        const [a, b] = await t.openMany(2);
        expect(await a.readRecord(group, 'control')).toBeNull();
        const v1 = await a.writeRecord(group, 'control', '{"frozen":{"since":1}}', null);
        expect(v1).not.toBeNull();
        expect(await b.writeRecord(group, 'control', '{}', null)).toBeNull();
        const v2 = await b.writeRecord(group, 'control', '{}', v1);
        expect(v2).not.toBeNull();
        expect(await a.writeRecord(group, 'control', '{"frozen":{"since":2}}', v1)).toBeNull();
        expect(await a.readRecord(group, 'control')).toMatchObject({ value: '{}', version: v2 });
        expect(await a.readRecord(group, 'allocation')).toBeNull();
        const watch = t.watchRecord(b, group, 'control');
        await watch.until('the cleared control', (r) => r?.value === '{}');
        await a.writeRecord(group, 'control', '{"leaving":{"m":3}}', v2);
        await watch.until('a leave notice', (r) => r?.value === '{"leaving":{"m":3}}');
      },
      caseTimeout,
    );

    it(
      "holds the records of 1,000 members × 100,000 partitions, below the servers' default size limits",
      async () => {
        // ZooKeeper refuses a znode over 1 MB (jute.maxbuffer) and etcd a request over 1.5 MiB. The consumer's
        // format 1 (plain JSON) of this group takes megabytes; the compact format must fit, for a typical
        // allocation (sticky, after members came and went) and the least compressible one (rendezvous: owners
        // scattered at random).
        // Everything is computed before any session opens: a long computation must not stall its renewals.
        const topic = 'orders.events-by-customer';
        const partitions = Array.from({ length: 100_000 }, (_, p) => `${topic}:${p}`).sort(compareStrings);
        const host = (i: number) => `worker-${String(i).padStart(4, '0')}.eu-west-1.compute.internal`;
        const members = Array.from({ length: 1_000 }, (_, i) => `${host(i)}:${1000 + i}:${randomUUID()}`).sort(
          compareStrings,
        );
        const churned = [...members.slice(10), ...members.slice(0, 10).map((m) => `${m}-again`)].sort(compareStrings);
        // One line per member: what it owns. Compared as one string: Jest's deep equality is slow on 100,000 items.
        const owners = (live: readonly string[], assignment: Assignment) =>
          live.map((m) => `${m} ${[...partitionsOf(assignment, m)].sort(compareStrings).join(',')}`).join('\n');
        const records = (
          [
            ['sticky', churned, sticky(churned, partitions, { previous: sticky(members, partitions) })],
            ['rendezvous', members, rendezvous(members, partitions)],
          ] as const
        ).map(([strategy, live, assignment]) => {
          const record = { generation: 1, leader: live[0]!, strategy, members: live, partitions, assignment };
          return { record, text: formatAllocation(record), plainBytes: Buffer.byteLength(JSON.stringify(record)) };
        });
        const setText = formatPartitionSet(partitions);
        const plainSetBytes = Buffer.byteLength(JSON.stringify(partitions));

        // The I/O first, the heavy checks after it: a long computation between calls would stall the sessions.
        const group = t.group();
        const [writer, reader] = await t.openMany(2);
        expect(
          await t.bounded(writer.writeRecord(group, 'partitions', setText, null), 'writing the set'),
        ).not.toBeNull();
        const storedSet = (await t.bounded(reader.readRecord(group, 'partitions'), 'reading the set'))!;
        const watched = t.watchRecord(reader, group, 'allocation');
        const stored: VersionedRecord[] = [];
        let version: string | null = null;
        for (const { record, text } of records) {
          version = await t.bounded(
            writer.writeRecord(group, 'allocation', text, version),
            `writing ${record.strategy}`,
          );
          expect(version).not.toBeNull();
          await watched.until(`the ${record.strategy} record`, (r) => r?.value === text);
          stored.push((await t.bounded(reader.readRecord(group, 'allocation'), 'reading the allocation'))!);
        }

        expect(plainSetBytes).toBeGreaterThan(MAX_RECORD_BYTES);
        expect(Buffer.byteLength(setText)).toBeLessThanOrEqual(MAX_RECORD_BYTES);
        expect(storedSet.value === setText).toBe(true);
        expect(parsePartitionSet(storedSet.value, storedSet.location).join(',') === partitions.join(',')).toBe(true);
        records.forEach(({ record, text, plainBytes }, i) => {
          expect(plainBytes).toBeGreaterThan(MAX_RECORD_BYTES);
          expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_RECORD_BYTES);
          expect(stored[i]!.value === text).toBe(true);
          const parsed = parseAllocation(stored[i]!.value, stored[i]!.location);
          expect(parsed.members).toEqual(record.members);
          expect(parsed.partitions.join(',') === partitions.join(',')).toBe(true);
          expect(owners(parsed.members, parsed.assignment) === owners(record.members, record.assignment)).toBe(true);
        });
      },
      caseTimeout * 4,
    );

    it(
      'a missing record reads null; create-if-absent succeeds once and never overwrites',
      async () => {
        const group = t.group();
        const [a, b] = await t.openMany(2);
        expect(await a.readRecord(group, 'allocation')).toBeNull();
        expect(await a.readRecord(group, 'partitions')).toBeNull();

        const version = await a.writeRecord(group, 'allocation', '{"generation":1}', null);
        expect(typeof version).toBe('string');
        expect(await b.writeRecord(group, 'allocation', '{"generation":99}', null)).toBeNull();
        const read = await b.readRecord(group, 'allocation');
        expect(read).toMatchObject({ value: '{"generation":1}', version });
        expect(read!.location.length).toBeGreaterThan(0);
        // Records are independent of each other and of other groups.
        expect(await b.readRecord(group, 'partitions')).toBeNull();
        expect(await b.readRecord(t.group(), 'allocation')).toBeNull();
      },
      caseTimeout,
    );

    it(
      'compare-and-set: the expected version writes; a stale or absent version returns null and writes nothing',
      async () => {
        const group = t.group();
        const [a, b] = await t.openMany(2);
        const v1 = await a.writeRecord(group, 'partitions', '["t:0"]', null);
        expect(v1).not.toBeNull();
        const v2 = await b.writeRecord(group, 'partitions', '["t:0","t:1"]', v1);
        expect(v2).not.toBeNull();
        expect(v2).not.toBe(v1);

        expect(await a.writeRecord(group, 'partitions', '["stale"]', v1)).toBeNull();
        expect(await a.readRecord(group, 'partitions')).toMatchObject({ value: '["t:0","t:1"]', version: v2 });

        // A version of one record means nothing for another, missing, record.
        expect(await a.writeRecord(group, 'allocation', '{"generation":1}', v2)).toBeNull();
        expect(await a.readRecord(group, 'allocation')).toBeNull();

        const v3 = await a.writeRecord(group, 'partitions', '["t:0","t:1","t:2"]', v2);
        expect(v3).not.toBeNull();
        expect([v1, v2]).not.toContain(v3);
        expect(await b.readRecord(group, 'partitions')).toMatchObject({ value: '["t:0","t:1","t:2"]', version: v3 });
      },
      caseTimeout,
    );

    it(
      `concurrent writers (${concurrency} sessions): exactly one wins each round, and watchers see the final value`,
      async () => {
        const group = t.group();
        const writers = await t.openMany(concurrency);
        const observer = await t.open();
        const watch = t.watchRecord(observer, group, 'allocation');
        let expected: string | null = null;
        for (let round = 1; round <= 5; round++) {
          const current = await writers[0].readRecord(group, 'allocation');
          expect(current?.version ?? null).toBe(expected);
          const results = await Promise.all(
            writers.map((w, i) => w.writeRecord(group, 'allocation', `round-${round}-writer-${i}`, expected)),
          );
          const winners = results.flatMap((version, i) => (version === null ? [] : [{ version, i }]));
          expect({ round, winners: winners.length }).toEqual({ round, winners: 1 });
          const [winner] = winners;
          const read = await observer.readRecord(group, 'allocation');
          expect(read).toMatchObject({ value: `round-${round}-writer-${winner.i}`, version: winner.version });
          expected = winner.version;
        }
        const final = (await observer.readRecord(group, 'allocation'))!.value;
        await watch.until(`the final value ${final}`, (r) => r?.value === final);
      },
      caseTimeout,
    );

    it(
      'values are handed over raw, garbage included: the consumer parses them',
      async () => {
        const group = t.group();
        const [a, b] = await t.openMany(2);
        const garbage = '{"generation": 1, not json ✓ ünïcödé';
        const watch = t.watchRecord(b, group, 'allocation');
        await a.writeRecord(group, 'allocation', garbage, null);
        expect((await b.readRecord(group, 'allocation'))?.value).toBe(garbage);
        await watch.until('the garbage value', (r) => r?.value === garbage);
        expect(await a.claim(group, 'orders:0', garbage)).toBe(true);
        expect((await b.readClaim(group, 'orders:0'))?.value).toBe(garbage);
        expect(t.errorsOf(b)).toEqual([]);
      },
      caseTimeout,
    );
  });
}
