// The names copied into src/semconv.ts are the semantic conventions' own (from the pinned package's incubating entry).
import * as incubating from '@opentelemetry/semantic-conventions/incubating';
import * as ours from '../src/semconv';

test('every copied semantic-convention name equals the package value', () => {
  const names = Object.keys(ours) as Array<keyof typeof ours>;
  expect(names.length).toBeGreaterThan(10);
  for (const name of names) {
    expect([name, ours[name]]).toEqual([name, (incubating as Record<string, unknown>)[name]]);
  }
});
