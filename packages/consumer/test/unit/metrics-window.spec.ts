// The sliding window behind metrics(): the Java client's SampledStat and Rate semantics, on a fake clock.
import { WindowedStat } from '../../src/metrics';

test('averages and maxima cover the live samples only; NaN when none is left', () => {
  const s = new WindowedStat(1000, 2);
  s.record(10, 0);
  s.record(30, 500);
  expect(s.avg(600)).toBe(20);
  expect(s.max(600)).toBe(30);
  s.record(5, 1200); // a second sample
  expect(s.avg(1300)).toBe(15);
  expect(s.max(1300)).toBe(30);
  // The first sample (started at 0) ages out at 2 × 1000 ms; the second stays until 3200.
  expect(s.max(2100)).toBe(5);
  expect(s.count(2100)).toBe(1);
  expect(Number.isNaN(s.avg(3300))).toBe(true);
  expect(Number.isNaN(s.max(3300))).toBe(true);
  // Totals count since the start, whatever the window.
  expect([s.totalCount, s.totalSum]).toEqual([3, 45]);
});

test('a young window divides by at least samples - 1 whole samples, as the Java Rate does', () => {
  const s = new WindowedStat(30_000, 2);
  s.record(300, 0);
  // 1 s in: 300 over 1 s + one whole sample (31 s), not over 1 s.
  expect(s.rate(1_000)).toBeCloseTo(300 / 31, 10);
  expect(s.countRate(1_000)).toBeCloseTo(1 / 31, 10);
  // 45 s in, a second sample: 600 over 45 s.
  s.record(300, 45_000);
  expect(s.rate(45_000)).toBeCloseTo(600 / 45, 10);
  // Per hour.
  expect(s.countRate(45_000, 3_600_000)).toBeCloseTo((2 / 45_000) * 3_600_000, 6);
  // Everything aged out: no rate.
  expect(s.rate(200_000)).toBe(0);
});

test('one sample: the window is that sample', () => {
  const s = new WindowedStat(100, 1);
  s.record(7, 0);
  expect(s.max(99)).toBe(7);
  expect(Number.isNaN(s.max(100))).toBe(true);
  s.record(3, 150);
  expect(s.max(160)).toBe(3);
});
