// Flexible versions, which kafkajs lacks: our encoders against request bytes written by hand from the protocol
// guide, and our decoders against responses captured from Kafka 4.4.0 (scripts/capture-broker-fixtures.js sent
// those hand-written requests, so the broker also vouched for them).
import {
  IMPLEMENTED_VERSIONS,
  KAFKA_ERROR_CODES,
  decodeResponse,
  getCodec,
  negotiateVersions,
  type ApiName,
} from '../src';
import kafka391Responses from './fixtures/broker-responses-kafka-3.9.1.json';
import brokerResponses from './fixtures/broker-responses.json';
import specRequests from './fixtures/spec-requests.json';

interface SpecRequest {
  api: string;
  version: number;
  request: Record<string, unknown>;
  hex: string;
}

describe('request bodies equal hex written from the spec', () => {
  for (const [name, fixture] of Object.entries(specRequests.requests as Record<string, SpecRequest>)) {
    it(name, () => {
      const request =
        fixture.api === 'SaslAuthenticate'
          ? { authBytes: Buffer.from(fixture.request.authBytes as string, 'hex') }
          : fixture.request;
      const bytes = getCodec(fixture.api as ApiName, fixture.version).encode(request as never);
      expect(bytes.toString('hex')).toBe(fixture.hex);
    });
  }
});

type CapturedResponses = typeof brokerResponses.responses;

function decoder(responses: CapturedResponses) {
  return <A extends ApiName>(name: keyof CapturedResponses, api: A) => {
    const fixture = responses[name];
    const { correlationId, response } = decodeResponse(api, fixture.version, Buffer.from(fixture.hex, 'hex'));
    expect(correlationId).toBe(fixture.correlationId);
    return response;
  };
}

const decode = decoder(brokerResponses.responses);

const TOPIC = 'kiel-fixture';
const BROKER = { nodeId: 1, host: '127.0.0.1', port: 9092, rack: null };
describe('responses captured from Kafka 4.4.0', () => {
  it('ApiVersions v3 (response header v0 despite the flexible body; features in tagged fields)', () => {
    const response = decode('ApiVersions v3', 'ApiVersions');
    expect(response.errorCode).toBe(KAFKA_ERROR_CODES.NONE);
    expect(response.apiKeys).toContainEqual({ apiKey: 1, minVersion: 4, maxVersion: 18 });
    expect(response.apiKeys).toContainEqual({ apiKey: 18, minVersion: 0, maxVersion: 5 });
    expect(response.apiKeys).toContainEqual({ apiKey: 36, minVersion: 0, maxVersion: 2 });
    expect(response.supportedFeatures).toContainEqual(expect.objectContaining({ name: 'metadata.version' }));
    expect(response.finalizedFeatures).toContainEqual(expect.objectContaining({ name: 'metadata.version' }));
    expect(response.finalizedFeaturesEpoch).toBeGreaterThan(0);
  });

  it('Metadata v12', () => {
    const response = decode('Metadata v12', 'Metadata');
    expect(response.brokers).toEqual([BROKER]);
    expect(response.controllerId).toBe(1);
    expect(response.clusterId).toMatch(/^[\w-]{22}$/);
    expect(response.topics).toEqual([
      {
        errorCode: 0,
        name: TOPIC,
        topicId: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/),
        isInternal: false,
        partitions: [
          {
            errorCode: 0,
            partitionIndex: 0,
            leaderId: 1,
            leaderEpoch: 0,
            replicaNodes: [1],
            isrNodes: [1],
            offlineReplicas: [],
          },
        ],
        topicAuthorizedOperations: -2147483648,
      },
    ]);
  });

  it('FindCoordinator v4', () => {
    expect(decode('FindCoordinator v4', 'FindCoordinator').coordinators).toEqual([
      { key: 'kiel-fixture-group', nodeId: 1, host: '127.0.0.1', port: 9092, errorCode: 0, errorMessage: '' },
    ]);
  });

  it('ListOffsets v7', () => {
    expect(decode('ListOffsets v7', 'ListOffsets').topics).toEqual([
      { name: TOPIC, partitions: [{ partitionIndex: 0, errorCode: 0, timestamp: -1, offset: 3, leaderEpoch: 0 }] },
    ]);
  });

  it('Fetch v12 leaves the three records as a raw RecordBatch v2', () => {
    const response = decode('Fetch v12', 'Fetch');
    expect(response.errorCode).toBe(0);
    const [partition] = response.responses[0].partitions;
    expect(response.responses[0].topic).toBe(TOPIC);
    expect(partition).toEqual(
      expect.objectContaining({
        partitionIndex: 0,
        errorCode: 0,
        highWatermark: 3,
        lastStableOffset: 3,
        logStartOffset: 0,
        abortedTransactions: null,
        preferredReadReplica: -1,
      }),
    );
    const records = partition.records!;
    expect(records.readBigInt64BE(0)).toBe(0n); // base offset
    expect(records.length).toBe(12 + records.readInt32BE(8)); // one whole batch
    expect(records.readInt8(16)).toBe(2); // magic
    expect(records.readInt32BE(23)).toBe(2); // last offset delta
    expect(records.readInt32BE(57)).toBe(3); // record count
    for (const text of ['k0', 'v0', 'k2', 'v2']) expect(records.includes(Buffer.from(text))).toBe(true);
  });

  it('OffsetCommit v8 then OffsetFetch v7', () => {
    expect(decode('OffsetCommit v8', 'OffsetCommit').topics).toEqual([
      { name: TOPIC, partitions: [{ partitionIndex: 0, errorCode: 0 }] },
    ]);
    expect(decode('OffsetFetch v7', 'OffsetFetch')).toEqual({
      throttleTimeMs: 0,
      errorCode: 0,
      topics: [
        {
          name: TOPIC,
          partitions: [
            { partitionIndex: 0, committedOffset: 2, committedLeaderEpoch: -1, metadata: 'm', errorCode: 0 },
          ],
        },
      ],
    });
  });
});

describe('responses captured from Kafka 3.9.1 (a private broker on port 19092)', () => {
  const decode391 = decoder(kafka391Responses.responses);

  it('ApiVersions v3: every API negotiates to our highest version', () => {
    const response = decode391('ApiVersions v3', 'ApiVersions');
    expect(response.errorCode).toBe(KAFKA_ERROR_CODES.NONE);
    const negotiated = negotiateVersions(response.apiKeys);
    for (const [api, range] of Object.entries(IMPLEMENTED_VERSIONS)) {
      expect([api, negotiated[api as ApiName]]).toEqual([api, range.maxVersion]);
    }
    expect(response.finalizedFeatures).toContainEqual(expect.objectContaining({ name: 'metadata.version' }));
  });

  it('Metadata v12, FindCoordinator v4, ListOffsets v7 and Fetch v12', () => {
    const metadata = decode391('Metadata v12', 'Metadata');
    expect(metadata.brokers).toEqual([{ nodeId: 1, host: '127.0.0.1', port: 19092, rack: null }]);
    expect(metadata.topics.map((t) => [t.name, t.errorCode, t.partitions.length])).toEqual([[TOPIC, 0, 1]]);
    expect(decode391('FindCoordinator v4', 'FindCoordinator').coordinators).toEqual([
      expect.objectContaining({ key: 'kiel-fixture-group', errorCode: 0, port: 19092 }),
    ]);
    expect(decode391('ListOffsets v7', 'ListOffsets').topics[0].partitions[0]).toMatchObject({
      errorCode: 0,
      offset: 3,
    });
    const fetched = decode391('Fetch v12', 'Fetch').responses[0].partitions[0];
    expect(fetched).toMatchObject({ errorCode: 0, highWatermark: 3 });
    expect(fetched.records!.readBigInt64BE(0)).toBe(0n);
    expect(fetched.records!.readInt32BE(57)).toBe(3);
  });

  it('OffsetCommit v8 then OffsetFetch v7', () => {
    expect(decode391('OffsetCommit v8', 'OffsetCommit').topics[0].partitions).toEqual([
      { partitionIndex: 0, errorCode: 0 },
    ]);
    expect(decode391('OffsetFetch v7', 'OffsetFetch').topics[0].partitions).toEqual([
      { partitionIndex: 0, committedOffset: 2, committedLeaderEpoch: -1, metadata: 'm', errorCode: 0 },
    ]);
  });
});
