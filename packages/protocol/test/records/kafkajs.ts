/** Typed access to kafkajs's internal encoders and decoders, the independent source of fixture bytes. */
/* eslint-disable @typescript-eslint/no-require-imports */

interface KafkajsEncoder {
  buffer: Buffer;
}

type KafkajsRecordInput = {
  offsetDelta?: number;
  timestampDelta?: number;
  key: Buffer | string | null;
  value: Buffer | string | null;
  headers?: Record<string, Buffer | string>;
};

export const kafkajsRecordBatch = require('kafkajs/src/protocol/recordBatch/v0').RecordBatch as (batch: {
  compression?: number;
  firstOffset?: unknown;
  firstTimestamp?: number;
  maxTimestamp?: number;
  partitionLeaderEpoch?: number;
  lastOffsetDelta?: number;
  transactional?: boolean;
  producerId?: unknown;
  producerEpoch?: number;
  firstSequence?: number;
  records: KafkajsEncoder[];
}) => Promise<KafkajsEncoder>;

export const kafkajsRecord = require('kafkajs/src/protocol/recordBatch/record/v0') as (
  record: KafkajsRecordInput,
) => KafkajsEncoder;

export const kafkajsMessageSet = require('kafkajs/src/protocol/messageSet') as (set: {
  messageVersion: number;
  compression?: number;
  entries: Array<{
    key?: Buffer | string | null;
    value: Buffer | string | null;
    timestamp?: number;
    compression?: number;
  }>;
}) => KafkajsEncoder & { size(): number };

export const kafkajsLong = require('kafkajs/src/utils/long') as { fromValue(v: number | string): unknown };

export const KafkajsDecoder = require('kafkajs/src/protocol/decoder') as new (buffer: Buffer) => unknown;

export const kafkajsRecordBatchDecoder = require('kafkajs/src/protocol/recordBatch/v0/decoder') as (
  decoder: unknown,
) => Promise<{ records: unknown[] }>;
