import {
  KAFKA_ERRORS,
  KAFKA_ERROR_CODES,
  KafkaError,
  isKafkaError,
  isKafkaProtocolError,
  kafkaErrorByCode,
  kafkaErrorByName,
  kafkaErrorFromCode,
} from '../src';

describe('the Kafka error table', () => {
  it('holds every code of Kafka 4.4 once, with names and retriable flags as the protocol guide has them', () => {
    expect(KAFKA_ERRORS.length).toBeGreaterThanOrEqual(130);
    expect(new Set(KAFKA_ERRORS.map((e) => e.errorCode)).size).toBe(KAFKA_ERRORS.length);
    // Spot checks against the protocol guide's table.
    expect(kafkaErrorByCode(6)).toMatchObject({ name: 'NOT_LEADER_OR_FOLLOWER', retriable: true });
    expect(kafkaErrorByCode(25)).toMatchObject({ name: 'UNKNOWN_MEMBER_ID', retriable: false });
    expect(kafkaErrorByCode(16)).toMatchObject({ name: 'NOT_COORDINATOR', retriable: true });
    expect(kafkaErrorByCode(14)).toMatchObject({ name: 'COORDINATOR_LOAD_IN_PROGRESS', retriable: true });
    expect(kafkaErrorByCode(22)).toMatchObject({ name: 'ILLEGAL_GENERATION', retriable: false });
    expect(kafkaErrorByCode(-1)).toMatchObject({ name: 'UNKNOWN_SERVER_ERROR', retriable: false });
    expect(kafkaErrorByName('OFFSET_METADATA_TOO_LARGE')?.errorCode).toBe(12);
    expect(KAFKA_ERROR_CODES.UNSUPPORTED_VERSION).toBe(35);
    for (const info of KAFKA_ERRORS) expect(KAFKA_ERROR_CODES[info.name]).toBe(info.errorCode);
  });

  it('kafkaErrorFromCode gives null for NONE and a typed KafkaError otherwise', () => {
    expect(kafkaErrorFromCode(KAFKA_ERROR_CODES.NONE)).toBeNull();
    const error = kafkaErrorFromCode(KAFKA_ERROR_CODES.NOT_LEADER_OR_FOLLOWER, { context: 'Fetch orders-3' })!;
    expect(error).toBeInstanceOf(KafkaError);
    expect(isKafkaError(error)).toBe(true);
    expect(isKafkaProtocolError(error)).toBe(false);
    expect(error).toMatchObject({ code: 'NOT_LEADER_OR_FOLLOWER', errorCode: 6, retriable: true });
    expect(error.message).toMatch(/^Fetch orders-3: NOT_LEADER_OR_FOLLOWER \(6\): /);
    const withBrokerMessage = new KafkaError(KAFKA_ERROR_CODES.INVALID_REQUEST, { brokerMessage: 'bad field' });
    expect(withBrokerMessage.message).toBe('INVALID_REQUEST (42): bad field');
  });

  it('keeps an unknown code from a newer broker', () => {
    const error = new KafkaError(9999);
    expect(error).toMatchObject({ code: 'UNKNOWN_SERVER_ERROR', errorCode: 9999, retriable: false });
    expect(kafkaErrorByCode(9999)).toBeUndefined();
  });
});
