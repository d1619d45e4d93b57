import * as fs from 'node:fs';
import * as path from 'node:path';
import packageJson from '../package.json';
import {
  ApiKeys,
  ApiVersions,
  IMPLEMENTED_VERSIONS,
  KAFKA_ERROR_CODES,
  Metadata,
  Reader,
  apiNameOf,
  decodeResponse,
  encodeRequest,
  encodeRequestFrame,
  getCodec,
  isKafkaProtocolError,
  negotiateVersions,
  readRequestHeader,
  requireVersion,
  type ApiName,
} from '../src';

/* eslint-disable @typescript-eslint/no-require-imports */
const kafkajsFrame = require('kafkajs/src/protocol/request');
const kafkajsMetadataV5 = require('kafkajs/src/protocol/requests/metadata/v5/request');
const kafkajsApiVersionsV0 = require('kafkajs/src/protocol/requests/apiVersions/v0/response');
/* eslint-enable @typescript-eslint/no-require-imports */

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}

describe('the registry', () => {
  it('implements the versions of the brief, one codec per version, with the right flexible flag', () => {
    expect(IMPLEMENTED_VERSIONS).toEqual({
      ApiVersions: { apiKey: 18, minVersion: 0, maxVersion: 3 },
      Metadata: { apiKey: 3, minVersion: 1, maxVersion: 12 },
      FindCoordinator: { apiKey: 10, minVersion: 0, maxVersion: 4 },
      ListOffsets: { apiKey: 2, minVersion: 1, maxVersion: 7 },
      Fetch: { apiKey: 1, minVersion: 4, maxVersion: 12 },
      OffsetFetch: { apiKey: 9, minVersion: 1, maxVersion: 7 },
      OffsetCommit: { apiKey: 8, minVersion: 2, maxVersion: 8 },
      SaslHandshake: { apiKey: 17, minVersion: 1, maxVersion: 1 },
      SaslAuthenticate: { apiKey: 36, minVersion: 0, maxVersion: 2 },
    });
    // First flexible versions, from the protocol guide (request header version 2).
    const firstFlexible: Record<ApiName, number> = {
      ApiVersions: 3,
      Metadata: 9,
      FindCoordinator: 3,
      ListOffsets: 6,
      Fetch: 12,
      OffsetFetch: 6,
      OffsetCommit: 8,
      SaslHandshake: Infinity,
      SaslAuthenticate: 2,
    };
    for (const [api, range] of Object.entries(IMPLEMENTED_VERSIONS) as [ApiName, typeof IMPLEMENTED_VERSIONS.Fetch][]) {
      expect(apiNameOf(range.apiKey)).toBe(api);
      for (let version = range.minVersion; version <= range.maxVersion; version++) {
        const codec = getCodec(api, version);
        expect([codec.apiName, codec.version, codec.apiKey]).toEqual([api, version, range.apiKey]);
        expect(codec.flexible).toBe(version >= firstFlexible[api]);
        expect(codec.requestHeaderVersion).toBe(codec.flexible ? 2 : 1);
        expect(codec.responseHeaderVersion).toBe(codec.flexible && api !== 'ApiVersions' ? 1 : 0);
      }
    }
    expect(Metadata.v12.apiKey).toBe(ApiKeys.Metadata);
    expect(Metadata.v12.version).toBe(12);
  });

  it('sends the package version as client software version (ApiVersions v3)', () => {
    expect(ApiVersions.DEFAULT_CLIENT_SOFTWARE_VERSION).toBe(packageJson.version);
    expect(ApiVersions.DEFAULT_CLIENT_SOFTWARE_NAME).toMatch(/^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$/);
  });

  it('refuses versions it does not implement with ERR_UNSUPPORTED_VERSION', () => {
    expect(caught(() => getCodec('Fetch', 3))).toMatchObject({ code: 'ERR_UNSUPPORTED_VERSION' });
    expect(caught(() => getCodec('Metadata', 13))).toMatchObject({ code: 'ERR_UNSUPPORTED_VERSION' });
    expect(caught(() => getCodec('Produce' as ApiName, 1))).toMatchObject({ code: 'ERR_UNSUPPORTED_VERSION' });
  });
});

describe('negotiateVersions', () => {
  it('picks the highest shared version per API from a real ApiVersions answer (Kafka 1.x, kafkajs fixture)', async () => {
    const fixture = path.join(__dirname, 'fixtures', 'kafkajs', 'apiVersions_v0_response.json');
    const bytes = Buffer.from(JSON.parse(fs.readFileSync(fixture, 'utf8')).data);
    const { apiVersions } = await kafkajsApiVersionsV0.decode(bytes);
    const broker = getCodec('ApiVersions', 0).decode(bytes).apiKeys;
    expect(broker).toEqual(apiVersions);
    const expected: Record<string, number | null> = {};
    for (const [api, ours] of Object.entries(IMPLEMENTED_VERSIONS)) {
      const theirs = broker.find((k) => k.apiKey === ours.apiKey);
      const high = theirs ? Math.min(theirs.maxVersion, ours.maxVersion) : -1;
      expected[api] = theirs && high >= Math.max(theirs.minVersion, ours.minVersion) ? high : null;
    }
    expect(negotiateVersions(broker)).toEqual(expected);
  });

  it('returns null where ranges do not overlap or the broker lacks the API, and requireVersion names it', () => {
    const negotiated = negotiateVersions([
      { apiKey: ApiKeys.Fetch, minVersion: 0, maxVersion: 3 },
      { apiKey: ApiKeys.Metadata, minVersion: 0, maxVersion: 20 },
      { apiKey: ApiKeys.OffsetCommit, minVersion: 5, maxVersion: 5 },
    ]);
    expect(negotiated.Fetch).toBeNull();
    expect(negotiated.Metadata).toBe(12);
    expect(negotiated.OffsetCommit).toBe(5);
    expect(negotiated.ListOffsets).toBeNull();
    expect(requireVersion(negotiated, 'Metadata')).toBe(12);
    const error = caught(() => requireVersion(negotiated, 'Fetch'));
    expect(isKafkaProtocolError(error)).toBe(true);
    expect(error).toMatchObject({ code: 'ERR_UNSUPPORTED_VERSION', message: expect.stringContaining('Fetch') });
  });
});

describe('framing', () => {
  it('encodeRequest writes request header v1 like kafkajs (which adds the size prefix)', async () => {
    const frame = await kafkajsFrame({
      correlationId: 12345,
      clientId: 'kiel-client',
      request: kafkajsMetadataV5({ topics: ['a', 'b'], allowAutoTopicCreation: false }),
    });
    const ours = encodeRequest(
      'Metadata',
      5,
      { correlationId: 12345, clientId: 'kiel-client' },
      { topics: [{ name: 'a' }, { name: 'b' }], allowAutoTopicCreation: false },
    );
    expect(ours.toString('hex')).toBe(frame.buffer.subarray(4).toString('hex'));
    const withSize = encodeRequestFrame(
      'Metadata',
      5,
      { correlationId: 12345, clientId: 'kiel-client' },
      { topics: [{ name: 'a' }, { name: 'b' }], allowAutoTopicCreation: false },
    );
    expect(withSize.toString('hex')).toBe(frame.buffer.toString('hex'));
  });

  it('encodeRequest writes request header v2 (with tagged fields) for flexible versions', () => {
    const ours = encodeRequest('Metadata', 12, { correlationId: 7, clientId: 'c' }, { topics: null });
    // api_key, api_version, correlation_id, client_id (still a classic NULLABLE_STRING), header tags, then the body.
    expect(ours.toString('hex')).toBe('0003' + '000c' + '00000007' + '000163' + '00' + '00' + '01' + '00' + '00');
    expect(readRequestHeader(new Reader(ours), 2)).toEqual({
      apiKey: 3,
      apiVersion: 12,
      correlationId: 7,
      clientId: 'c',
    });
    const nullClient = encodeRequest('ApiVersions', 0, { correlationId: 1 }, {});
    expect(nullClient.toString('hex')).toBe('0012' + '0000' + '00000001' + 'ffff');
  });

  it('decodeResponse strips response header v1 in flexible versions, and v0 for ApiVersions v3', () => {
    const metadata = decodeResponse(
      'Metadata',
      12,
      Buffer.from('0000002a' + '00' + '00000000' + '01' + '00' + 'ffffffff' + '01' + '00', 'hex'),
    );
    expect(metadata).toEqual({
      correlationId: 42,
      response: {
        throttleTimeMs: 0,
        brokers: [],
        clusterId: null,
        controllerId: -1,
        topics: [],
        clusterAuthorizedOperations: -2147483648,
      },
    });
    const apiVersions = decodeResponse(
      'ApiVersions',
      3,
      Buffer.from('00000009' + '0000' + '02' + '0012' + '0000' + '0003' + '00' + '00000000' + '00', 'hex'),
    );
    expect(apiVersions.correlationId).toBe(9);
    expect(apiVersions.response.apiKeys).toEqual([{ apiKey: 18, minVersion: 0, maxVersion: 3 }]);
  });

  it('reads an UNSUPPORTED_VERSION answer to ApiVersions v3 in the v0 layout the broker uses for it', () => {
    const body = Buffer.from('0023' + '00000001' + '0012' + '0000' + '0002', 'hex');
    const response = getCodec('ApiVersions', 3).decode(body);
    expect(response.errorCode).toBe(KAFKA_ERROR_CODES.UNSUPPORTED_VERSION);
    expect(response.apiKeys).toEqual([{ apiKey: 18, minVersion: 0, maxVersion: 2 }]);
  });

  it('encoders reject missing or wrong fields with ERR_INVALID_ARGUMENT', () => {
    expect(caught(() => getCodec('Metadata', 5).encode({ topics: [{ name: null }] }))).toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
    expect(caught(() => getCodec('FindCoordinator', 2).encode({ coordinatorKeys: ['a', 'b'] }))).toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
    expect(caught(() => getCodec('OffsetFetch', 1).encode({ groupId: 'g', topics: null }))).toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
    expect(caught(() => getCodec('Fetch', 4).encode(null as never))).toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });
});
