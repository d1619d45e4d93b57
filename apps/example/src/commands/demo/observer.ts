import { parseAllocation, type AllocatorBackend } from '@kiel/consumer';
import type { Publication } from './verdict';

/**
 * Watches the group's published allocations, to see every generation as it appears, with the partitions that
 * changed owner from the one before. Returns the list it fills and a function that stops watching.
 */
export function watchPublications(
  backend: AllocatorBackend,
  group: string,
  since: () => number,
): { publications: Publication[]; stop: () => void } {
  const publications: Publication[] = [];
  let owners: Map<string, string> | undefined;
  const stop = backend.watchRecord(group, 'allocation', (record) => {
    if (!record) return;
    const allocation = parseAllocation(record.value, record.location);
    if (publications.some((p) => p.generation === allocation.generation)) return;
    const next = new Map<string, string>();
    for (const [member, topics] of Object.entries(allocation.assignment)) {
      for (const [t, ps] of Object.entries(topics)) for (const p of ps as number[]) next.set(`${t}:${p}`, member);
    }
    let moved = 0;
    for (const [id, member] of next) if (owners?.get(id) !== member) moved++;
    owners = next;
    publications.push({ generation: allocation.generation, at: since(), members: allocation.members, moved });
  });
  return { publications, stop };
}
