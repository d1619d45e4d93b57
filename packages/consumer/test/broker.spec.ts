import { Broker } from '../src/net/broker';
import { Cluster } from '../src/cluster';
import { KAFKA_BROKERS, KAFKA_SASL_BROKERS, KAFKA_SASL_PASSWORD, KAFKA_SASL_USER } from '@kiel/test-kit';

const [saslHost, saslPort] = KAFKA_SASL_BROKERS[0]!.split(':');

describe('Broker', () => {
  it('negotiates versions on connect and answers at the negotiated version', async () => {
    const [host, port] = KAFKA_BROKERS[0]!.split(':');
    const broker = new Broker(-1, host!, Number(port), { clientId: 'kiel-test' });
    try {
      await broker.connect();
      // Kafka 3.x/4.x brokers support Fetch v12 and Metadata v12, the highest we implement.
      expect(broker.versions.Fetch).toBe(12);
      expect(broker.versions.Metadata).toBe(12);
      const metadata = await broker.send('Metadata', { topics: [], allowAutoTopicCreation: false });
      expect(metadata.brokers.length).toBeGreaterThan(0);
    } finally {
      broker.close();
    }
  });

  it('opens no new connection once closed: a later send fails with a retriable ERR_CONNECTION', async () => {
    const [host, port] = KAFKA_BROKERS[0]!.split(':');
    const broker = new Broker(-1, host!, Number(port), { clientId: 'kiel-test' });
    await broker.connect();
    broker.close();
    // A caller that took the broker before close() (a fetch between its connect and its send) must not reopen a
    // socket that nobody would close: it kept the process alive after the consumer closed.
    await expect(broker.send('Metadata', { topics: [], allowAutoTopicCreation: false })).rejects.toMatchObject({
      code: 'ERR_CONNECTION',
      retriable: true,
    });
    await expect(broker.connect()).rejects.toMatchObject({ code: 'ERR_CONNECTION' });
    expect(broker.connected).toBe(false);
  });

  it.each(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const)('authenticates with SASL %s', async (mechanism) => {
    const broker = new Broker(-1, saslHost!, Number(saslPort), {
      clientId: 'kiel-test',
      sasl: { mechanism, username: KAFKA_SASL_USER, password: KAFKA_SASL_PASSWORD },
    });
    try {
      await broker.connect();
      const metadata = await broker.send('Metadata', { topics: [], allowAutoTopicCreation: false });
      expect(metadata.brokers.length).toBeGreaterThan(0);
    } finally {
      broker.close();
    }
  });

  it.each(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const)(
    'reports a wrong %s password as ERR_SASL',
    async (mechanism) => {
      const broker = new Broker(-1, saslHost!, Number(saslPort), {
        clientId: 'kiel-test',
        sasl: { mechanism, username: KAFKA_SASL_USER, password: 'wrong' },
      });
      await expect(broker.connect()).rejects.toMatchObject({
        code: 'ERR_SASL',
        kafkaError: 'SASL_AUTHENTICATION_FAILED',
      });
      broker.close();
    },
  );
});

describe('Cluster', () => {
  it('fails with ERR_NO_BROKERS when no brokers are given', async () => {
    const cluster = new Cluster({ brokers: [], clientId: 'kiel-test' });
    await expect(cluster.connect()).rejects.toMatchObject({ code: 'ERR_NO_BROKERS' });
  });

  it('rejects a malformed broker address with ERR_INVALID_CONFIG naming the option', () => {
    expect(() => new Cluster({ brokers: ['localhost'], clientId: 'kiel-test' })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_CONFIG', option: 'brokers' }),
    );
  });

  it('skips dead bootstrap brokers and loads metadata from the first that answers', async () => {
    const cluster = new Cluster({
      brokers: ['127.0.0.1:1', ...KAFKA_BROKERS],
      clientId: 'kiel-test',
      connectTimeout: 2000,
    });
    try {
      await cluster.connect();
      expect(cluster.clusterId).toEqual(expect.any(String));
    } finally {
      cluster.close();
    }
  });

  it('fails with ERR_NO_BROKERS naming each address when none answers', async () => {
    const cluster = new Cluster({
      brokers: ['127.0.0.1:1', '127.0.0.1:2'],
      clientId: 'kiel-test',
      connectTimeout: 2000,
    });
    const error = await cluster.connect().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_NO_BROKERS' });
    expect((error as Error).message).toMatch(/127\.0\.0\.1:1.*127\.0\.0\.1:2/);
  });
});
