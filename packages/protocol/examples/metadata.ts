// The README's example: negotiate versions with a broker, then encode a Metadata request and decode the answer.
// @kiel/protocol does no I/O, so the example brings its own socket and framing (int32 size + payload).
import { once } from 'node:events';
import * as net from 'node:net';
import { decodeResponse, encodeRequest, negotiateVersions, requireVersion } from '../src';

/** Sends one request payload and resolves with the one response payload (no pipelining, for brevity). */
function exchange(socket: net.Socket, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 4 && received.length >= 4 + received.readInt32BE(0)) {
        socket.off('data', onData).off('error', reject);
        resolve(received.subarray(4, 4 + received.readInt32BE(0)));
      }
    };
    socket.on('data', onData).once('error', reject);
    const size = Buffer.alloc(4);
    size.writeInt32BE(payload.length);
    socket.write(Buffer.concat([size, payload]));
  });
}

/** Lists the brokers and topics of a cluster. */
export async function describeCluster(host = '127.0.0.1', port = 9092) {
  const socket = net.connect(port, host);
  await once(socket, 'connect');
  try {
    // 1. ApiVersions v0 is the one request every broker understands.
    const apiVersions = decodeResponse(
      'ApiVersions',
      0,
      await exchange(socket, encodeRequest('ApiVersions', 0, { correlationId: 1, clientId: 'example' }, {})),
    );
    const versions = negotiateVersions(apiVersions.response.apiKeys);

    // 2. Metadata at the highest version both sides speak; topics: null asks for every topic.
    const version = requireVersion(versions, 'Metadata');
    const request = encodeRequest('Metadata', version, { correlationId: 2, clientId: 'example' }, { topics: null });
    const { correlationId, response } = decodeResponse('Metadata', version, await exchange(socket, request));

    return {
      correlationId,
      version,
      brokers: response.brokers.map((b) => `${b.nodeId}@${b.host}:${b.port}`),
      topics: response.topics.map((t) => ({ name: t.name, partitions: t.partitions.length, errorCode: t.errorCode })),
    };
  } finally {
    socket.end();
    await once(socket, 'close');
  }
}

if (require.main === module) {
  describeCluster().then(
    (cluster) => console.log(cluster),
    (err) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
