import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { KielError } from '../errors';

/** The SCRAM mechanisms Kafka supports (KIP-84). */
export type ScramMechanism = 'SCRAM-SHA-256' | 'SCRAM-SHA-512';

const DIGEST: Record<ScramMechanism, { hash: 'sha256' | 'sha512'; length: number }> = {
  'SCRAM-SHA-256': { hash: 'sha256', length: 32 },
  'SCRAM-SHA-512': { hash: 'sha512', length: 64 },
};

/** Kafka refuses fewer iterations than this (ScramMechanism.minIterations); so do we, against a rogue server. */
const MIN_ITERATIONS = 4096;
const GS2_HEADER = 'n,,';

function saslName(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

function saslError(message: string): KielError {
  return new KielError('ERR_SASL', `SASL SCRAM authentication failed: ${message}`);
}

function parseAttributes(message: string): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq !== 1) throw saslError(`malformed server message ${JSON.stringify(message)}`);
    attributes.set(part[0]!, part.slice(2));
  }
  return attributes;
}

/**
 * The client side of a SCRAM exchange (RFC 5802 / RFC 7677), as Kafka runs it through SaslAuthenticate:
 * `firstMessage()` → server-first → `finalMessage(serverFirst)` → server-final → `verifyServerFinal(...)`.
 */
export class ScramClient {
  private readonly mechanism: ScramMechanism;
  private readonly username: string;
  private readonly password: string;
  private readonly clientNonce: string;
  private clientFirstBare = '';
  private expectedServerSignature: Buffer | undefined;

  /** `nonce` is for reproducing published test vectors; leave it out to get a fresh random nonce. */
  constructor(options: { mechanism: ScramMechanism; username: string; password: string; nonce?: string }) {
    this.mechanism = options.mechanism;
    this.username = options.username;
    this.password = options.password;
    this.clientNonce = options.nonce ?? randomBytes(24).toString('base64').replace(/[+/=]/g, '');
  }

  /** client-first-message. */
  firstMessage(): Buffer {
    this.clientFirstBare = `n=${saslName(this.username)},r=${this.clientNonce}`;
    return Buffer.from(GS2_HEADER + this.clientFirstBare, 'utf8');
  }

  /** Computes client-final-message from server-first-message. */
  finalMessage(serverFirstBytes: Buffer): Buffer {
    const serverFirst = serverFirstBytes.toString('utf8');
    const attributes = parseAttributes(serverFirst);
    const error = attributes.get('e');
    if (error !== undefined) throw saslError(`server said ${error}`);
    const nonce = attributes.get('r');
    const salt = attributes.get('s');
    const iterations = Number(attributes.get('i'));
    if (!nonce || !nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length) {
      throw saslError('server nonce does not extend the client nonce');
    }
    if (!salt) throw saslError('server sent no salt');
    if (!Number.isInteger(iterations) || iterations < MIN_ITERATIONS) {
      throw saslError(`server asked for ${attributes.get('i')} iterations (minimum ${MIN_ITERATIONS})`);
    }
    const { hash, length } = DIGEST[this.mechanism];
    const hmac = (key: Buffer, text: string) => createHmac(hash, key).update(text, 'utf8').digest();
    const saltedPassword = pbkdf2Sync(this.password, Buffer.from(salt, 'base64'), iterations, length, hash);
    const clientKey = hmac(saltedPassword, 'Client Key');
    const storedKey = createHash(hash).update(clientKey).digest();
    const withoutProof = `c=${Buffer.from(GS2_HEADER).toString('base64')},r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const clientSignature = hmac(storedKey, authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!;
    this.expectedServerSignature = hmac(hmac(saltedPassword, 'Server Key'), authMessage);
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`, 'utf8');
  }

  /** Checks server-final-message: the server must prove it knows the password too. */
  verifyServerFinal(serverFinalBytes: Buffer): void {
    const attributes = parseAttributes(serverFinalBytes.toString('utf8'));
    const error = attributes.get('e');
    if (error !== undefined) throw saslError(`server said ${error}`);
    const verifier = attributes.get('v');
    const expected = this.expectedServerSignature;
    if (!expected || !verifier) throw saslError('server sent no signature');
    const got = Buffer.from(verifier, 'base64');
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
      throw saslError('the server signature does not match: the server does not know the password');
    }
  }
}
