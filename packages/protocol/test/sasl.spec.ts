// SaslHandshake and SaslAuthenticate against the SASL_PLAINTEXT listener of the local stack.
import { randomBytes } from 'node:crypto';
import { KAFKA_ERROR_CODES, IMPLEMENTED_VERSIONS } from '../src';
import { KafkaSocket, saslBroker } from './helpers/kafka-socket';

const broker = saslBroker();

async function withSocket<T>(use: (socket: KafkaSocket) => Promise<T>): Promise<T> {
  const socket = await KafkaSocket.connect(broker);
  try {
    return await use(socket);
  } finally {
    await socket.close();
  }
}

function plain(user: string, password: string): Buffer {
  return Buffer.from(`\u0000${user}\u0000${password}`, 'utf8');
}

describe('SASL against the real broker', () => {
  const { minVersion, maxVersion } = IMPLEMENTED_VERSIONS.SaslAuthenticate;
  for (let version = minVersion; version <= maxVersion; version++) {
    it(`SaslHandshake v1 then SaslAuthenticate v${version} with PLAIN`, async () => {
      await withSocket(async (socket) => {
        const handshake = await socket.request('SaslHandshake', 1, { mechanism: 'PLAIN' });
        expect(handshake.errorCode).toBe(KAFKA_ERROR_CODES.NONE);
        expect(handshake.mechanisms).toEqual(expect.arrayContaining(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']));
        const auth = await socket.request('SaslAuthenticate', version, {
          authBytes: plain(broker.user, broker.password),
        });
        expect(auth.errorCode).toBe(KAFKA_ERROR_CODES.NONE);
        // Kafka 4 sends an empty message on success, older brokers null.
        expect(auth.errorMessage ?? '').toBe('');
        expect(auth.authBytes.length).toBe(0);
        // No connections.max.reauth.ms on the stack: no session lifetime.
        expect(auth.sessionLifetimeMs).toBe(0);
        // Authenticated: an ordinary request now works on this connection.
        const metadata = await socket.request('Metadata', 12, { topics: [] });
        expect(metadata.brokers.length).toBeGreaterThan(0);
      });
    });
  }

  it('a wrong password comes back as SASL_AUTHENTICATION_FAILED with the broker message, as data', async () => {
    await withSocket(async (socket) => {
      await socket.request('SaslHandshake', 1, { mechanism: 'PLAIN' });
      const auth = await socket.request('SaslAuthenticate', 2, { authBytes: plain(broker.user, 'wrong') });
      expect(auth.errorCode).toBe(KAFKA_ERROR_CODES.SASL_AUTHENTICATION_FAILED);
      expect(auth.errorMessage).toMatch(/\S/);
    });
  });

  it('SCRAM-SHA-256: the server-first message echoes the client nonce (auth bytes both ways)', async () => {
    await withSocket(async (socket) => {
      await socket.request('SaslHandshake', 1, { mechanism: 'SCRAM-SHA-256' });
      const nonce = randomBytes(12).toString('base64url');
      const auth = await socket.request('SaslAuthenticate', 2, {
        authBytes: Buffer.from(`n,,n=${broker.user},r=${nonce}`),
      });
      expect(auth.errorCode).toBe(KAFKA_ERROR_CODES.NONE);
      expect(auth.authBytes.toString()).toMatch(new RegExp(`^r=${nonce}[^,]+,s=[^,]+,i=\\d+$`));
    });
  });
});
