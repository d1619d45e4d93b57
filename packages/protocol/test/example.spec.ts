import { brokerAddress } from './helpers/kafka-socket';
import { describeCluster } from '../examples/metadata';

describe('the README example', () => {
  it('negotiates versions and describes the local cluster', async () => {
    const { host, port } = brokerAddress();
    const cluster = await describeCluster(host, port);
    expect(cluster.correlationId).toBe(2);
    expect(cluster.version).toBe(12);
    expect(cluster.brokers).toEqual([
      expect.stringMatching(new RegExp(`^\\d+@${host.replace(/\./g, '\\.')}:${port}$`)),
    ]);
    expect(cluster.topics.every((t) => typeof t.name === 'string' && t.partitions > 0)).toBe(true);
  });
});
