export { KafkaProtocolError, isKafkaProtocolError } from './errors';
export type { ProtocolErrorCode } from './errors';
