// Where the local stack's servers are (scripts/stack env), with the stack's defaults.
import * as path from 'node:path';

export const KAFKA_BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
export const KAFKA_SASL_BROKERS = (process.env.KAFKA_SASL_BROKERS ?? '127.0.0.1:9094').split(',');
export const KAFKA_SASL_USER = process.env.KAFKA_SASL_USER ?? 'kiel';
export const KAFKA_SASL_PASSWORD = process.env.KAFKA_SASL_PASSWORD ?? 'kiel-secret';
export const KAFKA_TLS_BROKERS = (process.env.KAFKA_TLS_BROKERS ?? '127.0.0.1:9095').split(',');
export const KAFKA_TLS_CA = process.env.KAFKA_TLS_CA ?? path.join(__dirname, '../../../../.stack/kafka/tls/ca.pem');
/** kcat (librdkafka): Debian's, unpacked by scripts/stack (Jest's global setup fetches it and sets KCAT). */
export const KCAT = process.env.KCAT ?? path.join(__dirname, '../../../../.cache/stack/kcat/bin/kcat');

/** A unique name for a test's topic or group. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
