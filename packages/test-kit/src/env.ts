// Where the local stack's servers are (scripts/stack env), with the stack's defaults.
import * as path from 'node:path';
import { REPO_ROOT } from './paths';

/** The shared Kafka's plaintext listener (`KAFKA_BROKERS` from `scripts/stack env`). */
export const KAFKA_BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
/** Its SASL listener (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and the credentials it accepts. */
export const KAFKA_SASL_BROKERS = (process.env.KAFKA_SASL_BROKERS ?? '127.0.0.1:9094').split(',');
export const KAFKA_SASL_USER = process.env.KAFKA_SASL_USER ?? 'kiel';
export const KAFKA_SASL_PASSWORD = process.env.KAFKA_SASL_PASSWORD ?? 'kiel-secret';
/** Its TLS listener, and the CA that signed the listener's certificate. */
export const KAFKA_TLS_BROKERS = (process.env.KAFKA_TLS_BROKERS ?? '127.0.0.1:9095').split(',');
export const KAFKA_TLS_CA = process.env.KAFKA_TLS_CA ?? path.join(REPO_ROOT, '.stack/kafka/tls/ca.pem');
/** kcat (librdkafka): Debian's, unpacked by scripts/stack (Jest's global setup fetches it and sets KCAT). */
export const KCAT = process.env.KCAT ?? path.join(REPO_ROOT, '.cache/stack/kcat/bin/kcat');

/** A unique name for a test's topic or group. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
