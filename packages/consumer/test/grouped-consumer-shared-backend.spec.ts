// Two GroupedConsumers given one backend instance: the second is refused, and closing it leaves the first alone.
import { GroupedConsumer, MemoryBackend, MemoryStore, type KielError } from '../src';
import { KAFKA_BROKERS, topics, uniqueName, waitFor } from '@kiel/test-kit';

const t = topics();
afterAll(() => t.cleanup());

describe('GroupedConsumers sharing one backend instance', () => {
  it('refuses the second connect with ERR_INVALID_CONFIG naming the backend, and its close leaves the first alone', async () => {
    const topic = await t.create('shared-backend', 2);
    const group = uniqueName('shared-backend');
    const store = new MemoryStore();
    const backend = new MemoryBackend({ store, sessionTimeout: 3000 });
    const observer = new MemoryBackend({ store });
    const make = () =>
      new GroupedConsumer<number>({ brokers: KAFKA_BROKERS, group, topics: [topic], backend, maxWaitTime: 100 });
    const first = make();
    const second = make();
    try {
      await first.connect();
      await waitFor('the first owning both partitions', () => first.assignment.length === 2, 10_000);
      const refused = await second.connect().then(
        () => undefined,
        (err: KielError) => err,
      );
      expect(refused).toMatchObject({ code: 'ERR_INVALID_CONFIG', option: 'backend' });
      await second.close();

      await observer.connect();
      expect((await observer.members(group)).map((m) => m.info.id)).toEqual([first.memberId]);
      expect(backend.state).toBe('connected');
      expect(first.assignment.length).toBe(2);
    } finally {
      await second.close().catch(() => undefined);
      await first.close();
      await observer.close();
    }
  });
});
