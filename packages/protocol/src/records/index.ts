export { decodeRecords, scanRecords, DEFAULT_MAX_DECOMPRESSED_BYTES } from './decode';
export { encodeRecordBatch, encodeMessageSet, controlRecord } from './encode';
export type {
  RecordBatchInput,
  RecordInput,
  RecordHeaderInput,
  MessageSetInput,
  MessageInput,
  EncodeOptions,
} from './encode';
export { CodecRegistry, CompressionType, defaultCodecs, gzipCodec, snappyCodec, lz4Codec, zstdCodec } from './codecs';
export type { CompressionCodec, CompressionId, DecompressLimits } from './codecs';
export { crc32c, crc32, crc32cImplementation } from './crc';
export type {
  KafkaRecord,
  RecordHeader,
  RecordBatch,
  TimestampType,
  ControlType,
  AbortedTransaction,
  DecodeRecordsOptions,
  DecodeRecordsResult,
  RecordsScan,
} from './types';
