// The OpenTelemetry messaging semantic conventions this package emits, copied from
// @opentelemetry/semantic-conventions 1.45.0 (its `incubating` entry point). The conventions' maintainers ask
// instrumentations to copy unstable names rather than import `incubating` at run time, since it may break in a minor
// release; test/semconv.spec.ts holds each copy to the package's value.
export const ATTR_MESSAGING_SYSTEM = 'messaging.system';
export const ATTR_MESSAGING_OPERATION_NAME = 'messaging.operation.name';
export const ATTR_MESSAGING_OPERATION_TYPE = 'messaging.operation.type';
export const ATTR_MESSAGING_DESTINATION_NAME = 'messaging.destination.name';
export const ATTR_MESSAGING_DESTINATION_PARTITION_ID = 'messaging.destination.partition.id';
export const ATTR_MESSAGING_CONSUMER_GROUP_NAME = 'messaging.consumer.group.name';
export const ATTR_MESSAGING_CLIENT_ID = 'messaging.client.id';
export const ATTR_MESSAGING_KAFKA_OFFSET = 'messaging.kafka.offset';
export const ATTR_MESSAGING_BATCH_MESSAGE_COUNT = 'messaging.batch.message_count';
export const ATTR_ERROR_TYPE = 'error.type';
export const METRIC_MESSAGING_CLIENT_CONSUMED_MESSAGES = 'messaging.client.consumed.messages';
export const METRIC_MESSAGING_PROCESS_DURATION = 'messaging.process.duration';
export const METRIC_MESSAGING_CLIENT_OPERATION_DURATION = 'messaging.client.operation.duration';
export const MESSAGING_SYSTEM_VALUE_KAFKA = 'kafka';
export const MESSAGING_OPERATION_TYPE_VALUE_PROCESS = 'process';
export const MESSAGING_OPERATION_TYPE_VALUE_RECEIVE = 'receive';
export const MESSAGING_OPERATION_TYPE_VALUE_SETTLE = 'settle';
