// Real-broker tests: requests encoded by this package go over a plain socket to the local Kafka, and the decoded
// answers are checked against what kafkajs produced and what we know of the broker.
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import {
  ApiKeys,
  CoordinatorKeyType,
  IMPLEMENTED_VERSIONS,
  KAFKA_ERROR_CODES,
  ListOffsetsTimestamp,
  SimpleCommit,
  kafkaErrorByCode,
  negotiateVersions,
  requireVersion,
  type ApiName,
} from '../src';
import { KafkaSocket, brokerAddress } from './helpers/kafka-socket';

const address = brokerAddress();
const suffix = randomBytes(4).toString('hex');
const topic = `protocol-api-${suffix}`;
const groupId = `protocol-api-group-${suffix}`;
const kafka = new Kafka({
  clientId: 'protocol-api-test',
  brokers: [`${address.host}:${address.port}`],
  logLevel: logLevel.NOTHING,
});
const admin = kafka.admin();
let socket: KafkaSocket;

// Three produce calls give three batches: offsets 0, 1-2 and 3-5.
const BATCHES = [['m0'], ['m1', 'm2'], ['m3', 'm4', 'm5']];
const MESSAGE_COUNT = BATCHES.flat().length;

function range(api: ApiName): number[] {
  const { minVersion, maxVersion } = IMPLEMENTED_VERSIONS[api];
  return Array.from({ length: maxVersion - minVersion + 1 }, (_, i) => minVersion + i);
}

beforeAll(async () => {
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }], waitForLeaders: true });
  const producer = kafka.producer();
  await producer.connect();
  for (const batch of BATCHES) {
    await producer.send({ topic, messages: batch.map((value) => ({ key: `k-${value}`, value, partition: 0 })) });
  }
  await producer.disconnect();
  socket = await KafkaSocket.connect();
  await waitForGroupCoordinator();
});

/**
 * On a fresh cluster the first group request creates __consumer_offsets, and the coordinator answers
 * COORDINATOR_NOT_AVAILABLE / COORDINATOR_LOAD_IN_PROGRESS (retriable, returned as data) until it is ready. Wait
 * for it as a client would, so the version checks below see a ready coordinator.
 */
async function waitForGroupCoordinator(): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const found = await socket.request('FindCoordinator', 4, { coordinatorKeys: [groupId] });
    const fetched =
      found.coordinators[0].errorCode === KAFKA_ERROR_CODES.NONE
        ? await socket.request('OffsetFetch', 7, { groupId, topics: [{ name: topic, partitionIndexes: [0] }] })
        : null;
    if (fetched?.errorCode === KAFKA_ERROR_CODES.NONE) return;
    const code = fetched?.errorCode ?? found.coordinators[0].errorCode;
    if (!kafkaErrorByCode(code)?.retriable || Date.now() > deadline) {
      throw new Error(`group coordinator not ready: ${kafkaErrorByCode(code)?.name ?? code}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

afterAll(async () => {
  await socket?.close();
  await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin.deleteGroups([groupId]).catch(() => undefined);
  await admin.disconnect();
});

describe('against the real broker', () => {
  it('ApiVersions v0-v3 list every API this package needs, and negotiation picks the highest shared version', async () => {
    for (const version of range('ApiVersions')) {
      const response = await socket.request('ApiVersions', version, {});
      expect(response.errorCode).toBe(KAFKA_ERROR_CODES.NONE);
      const fetch = response.apiKeys.find((k) => k.apiKey === ApiKeys.Fetch);
      expect(fetch?.maxVersion).toBeGreaterThanOrEqual(12);
      const negotiated = negotiateVersions(response.apiKeys);
      for (const api of Object.keys(IMPLEMENTED_VERSIONS) as ApiName[]) {
        // Kafka 4.x supports at least up to our maximum of every API.
        expect(requireVersion(negotiated, api)).toBe(IMPLEMENTED_VERSIONS[api].maxVersion);
      }
      if (version >= 3) {
        expect(response.finalizedFeaturesEpoch).toBeGreaterThanOrEqual(0);
        expect(response.supportedFeatures.map((f) => f.name)).toContain('metadata.version');
      }
    }
  });

  it('Metadata v1-v12 describe the topic and the broker', async () => {
    for (const version of range('Metadata')) {
      const response = await socket.request('Metadata', version, {
        topics: [{ name: topic }],
        allowAutoTopicCreation: false,
      });
      expect(response.brokers).toEqual([expect.objectContaining({ host: address.host, port: address.port })]);
      expect(response.controllerId).toBeGreaterThanOrEqual(version >= 1 ? -1 : 0);
      const described = response.topics.find((t) => t.name === topic);
      expect(described?.errorCode).toBe(KAFKA_ERROR_CODES.NONE);
      expect(described?.partitions.map((p) => p.partitionIndex).sort()).toEqual([0, 1]);
      for (const partition of described!.partitions) {
        expect(partition.leaderId).toBe(response.brokers[0].nodeId);
        expect(partition.replicaNodes).toEqual([response.brokers[0].nodeId]);
        expect(partition.isrNodes).toEqual([response.brokers[0].nodeId]);
        if (version >= 7) expect(partition.leaderEpoch).toBeGreaterThanOrEqual(0);
      }
      if (version >= 2) expect(response.clusterId).toMatch(/^\S+$/);
      if (version >= 10) expect(described?.topicId).not.toBe('00000000-0000-0000-0000-000000000000');
    }
  });

  it('Metadata reports UNKNOWN_TOPIC_OR_PARTITION for a missing topic, as data', async () => {
    const response = await socket.request('Metadata', 12, {
      topics: [{ name: `${topic}-missing` }],
      allowAutoTopicCreation: false,
    });
    expect(response.topics[0].errorCode).toBe(KAFKA_ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION);
  });

  it('FindCoordinator v0-v4 find the group coordinator', async () => {
    for (const version of range('FindCoordinator')) {
      const response = await socket.request('FindCoordinator', version, {
        key: groupId,
        keyType: CoordinatorKeyType.GROUP,
      });
      const found = version >= 4 ? response.coordinators[0] : response;
      expect(found).toEqual(
        expect.objectContaining({ errorCode: KAFKA_ERROR_CODES.NONE, host: address.host, port: address.port }),
      );
      if (version >= 4) expect(response.coordinators[0].key).toBe(groupId);
    }
  });

  it('ListOffsets v1-v7 return the earliest and latest offsets', async () => {
    for (const version of range('ListOffsets')) {
      const response = await socket.request('ListOffsets', version, {
        topics: [
          {
            name: topic,
            partitions: [
              { partitionIndex: 0, timestamp: ListOffsetsTimestamp.LATEST },
              { partitionIndex: 1, timestamp: ListOffsetsTimestamp.EARLIEST },
            ],
          },
        ],
      });
      const partitions = response.topics[0].partitions.sort((a, b) => a.partitionIndex - b.partitionIndex);
      expect(partitions.map((p) => [p.partitionIndex, p.errorCode, p.offset])).toEqual([
        [0, KAFKA_ERROR_CODES.NONE, MESSAGE_COUNT],
        [1, KAFKA_ERROR_CODES.NONE, 0],
      ]);
      if (version >= 4) expect(partitions[0].leaderEpoch).toBeGreaterThanOrEqual(0);
    }
  });

  it('Fetch v4-v12 return record bytes starting at the batch that holds the fetch offset', async () => {
    for (const version of range('Fetch')) {
      const response = await socket.request('Fetch', version, {
        maxWaitMs: 100,
        minBytes: 1,
        maxBytes: 1024 * 1024,
        topics: [
          {
            topic,
            partitions: [
              { partition: 0, fetchOffset: 3, partitionMaxBytes: 1024 * 1024 },
              { partition: 1, fetchOffset: 0, partitionMaxBytes: 1024 * 1024 },
            ],
          },
        ],
      });
      expect(response.errorCode).toBe(KAFKA_ERROR_CODES.NONE);
      const [withData, empty] = response.responses[0].partitions;
      expect(withData.partitionIndex).toBe(0);
      expect(withData.errorCode).toBe(KAFKA_ERROR_CODES.NONE);
      expect(withData.highWatermark).toBe(MESSAGE_COUNT);
      expect(withData.lastStableOffset).toBe(MESSAGE_COUNT);
      if (version >= 5) expect(withData.logStartOffset).toBe(0);
      if (version >= 11) expect(withData.preferredReadReplica).toBe(-1);
      // The records stay raw; read the RecordBatch v2 header by hand: base offset, magic, last offset delta.
      const records = withData.records!;
      expect(records.readBigInt64BE(0)).toBe(3n);
      expect(records.readInt8(16)).toBe(2);
      expect(records.readInt32BE(23)).toBe(2);
      expect(records.length).toBe(12 + records.readInt32BE(8));
      expect(records.includes(Buffer.from('m5'))).toBe(true);
      expect(empty.highWatermark).toBe(0);
      expect(empty.records === null || empty.records.length === 0).toBe(true);
    }
  });

  it('OffsetCommit v2-v8 then OffsetFetch v1-v7 round-trip offsets with generation -1 and an empty member id', async () => {
    const commitVersions = range('OffsetCommit');
    for (const [i, version] of commitVersions.entries()) {
      const committedOffset = 10 + i;
      const commit = await socket.request('OffsetCommit', version, {
        groupId,
        generationIdOrMemberEpoch: SimpleCommit.GENERATION_ID,
        memberId: SimpleCommit.MEMBER_ID,
        topics: [
          { name: topic, partitions: [{ partitionIndex: 1, committedOffset, committedMetadata: `v${version}` }] },
        ],
      });
      expect(commit.topics).toEqual([
        { name: topic, partitions: [{ partitionIndex: 1, errorCode: KAFKA_ERROR_CODES.NONE }] },
      ]);
      for (const fetchVersion of range('OffsetFetch')) {
        const fetched = await socket.request('OffsetFetch', fetchVersion, {
          groupId,
          topics: [{ name: topic, partitionIndexes: [0, 1] }],
        });
        expect(fetched.errorCode).toBe(KAFKA_ERROR_CODES.NONE);
        const partitions = fetched.topics[0].partitions.sort((a, b) => a.partitionIndex - b.partitionIndex);
        expect(partitions.map((p) => [p.partitionIndex, p.committedOffset, p.metadata, p.errorCode])).toEqual([
          [0, -1, expect.anything(), KAFKA_ERROR_CODES.NONE],
          [1, committedOffset, `v${version}`, KAFKA_ERROR_CODES.NONE],
        ]);
      }
    }
    // null topics (v2+) lists every committed partition of the group.
    const all = await socket.request('OffsetFetch', 7, { groupId, topics: null });
    expect(all.topics).toEqual([
      {
        name: topic,
        partitions: [expect.objectContaining({ partitionIndex: 1, committedOffset: 10 + commitVersions.length - 1 })],
      },
    ]);
  });

  it('SaslHandshake v1 on the plaintext listener answers with an error code as data', async () => {
    const response = await socket.request('SaslHandshake', 1, { mechanism: 'PLAIN' });
    expect(response.errorCode).not.toBe(KAFKA_ERROR_CODES.NONE);
    expect(Array.isArray(response.mechanisms)).toBe(true);
  });
});
