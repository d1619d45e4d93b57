// TLS: the backend against a TLS endpoint (a TLS-terminating proxy in front of the shared etcd), with a test CA
// made by openssl, with and without client certificates.
import { waitFor } from '@kiel/test-kit';
import { Backends, randomPrefix, rawClient, rejection, sharedHosts } from './helpers';
import { TlsProxy, makeCertificates } from './private-etcd';
import type { TestCertificates } from './private-etcd';

const sharedPort = Number(sharedHosts.split(',')[0].split(':').at(-1));
const prefix = randomPrefix();
let certificates: TestCertificates;
let serverOnly: TlsProxy;
let mutual: TlsProxy;
let backends: Backends;

beforeAll(async () => {
  certificates = await makeCertificates();
  serverOnly = await TlsProxy.start(sharedPort, certificates, { requireClientCertificate: false });
  mutual = await TlsProxy.start(sharedPort, certificates, { requireClientCertificate: true });
}, 30_000);

beforeEach(() => {
  backends = new Backends({ hosts: serverOnly.hosts, prefix, ttl: 2, connectTimeout: 2_000 });
});

afterEach(() => backends.closeAll());

afterAll(async () => {
  await serverOnly?.close();
  await mutual?.close();
  certificates?.dispose();
  const raw = rawClient(sharedHosts);
  await raw.delete().prefix(prefix);
  raw.close();
});

describe('EtcdBackend over TLS', () => {
  it('connects to a TLS endpoint with the CA given in `tls.ca` (hosts without a scheme become https)', async () => {
    const [a, b] = await Promise.all([
      backends.connected({ tls: { ca: certificates.ca } }),
      backends.connected({ hosts: `https://${serverOnly.hosts}`, tls: { ca: Buffer.from(certificates.ca) } }),
    ]);
    const seen: number[] = [];
    b.watchMembers('g', (members) => seen.push(members.length));
    await a.join('g', { id: 'a', host: 'tls.test', pid: 1 });
    await waitFor('the member, through the watch', () => seen.at(-1) === 1, 5_000);
    expect(await a.claim('g', 't:0', 'a')).toBe(true);
    expect(await b.readClaim('g', 't:0')).toMatchObject({ value: 'a', mine: false });
  });

  it('refuses a server certificate it cannot verify: a typed error in bounded time', async () => {
    // No `ca`: the system's roots, which do not include the test CA.
    const untrusted = backends.make({ hosts: `https://${serverOnly.hosts}` });
    const { error, ms } = await rejection(untrusted.connect());
    expect(error.code).toBe('ERR_BACKEND_UNAVAILABLE');
    expect(ms).toBeLessThan(3_000);
  });

  it('presents a client certificate when the server requires one', async () => {
    const withCertificate = await backends.connected({
      hosts: mutual.hosts,
      tls: { ca: certificates.ca, cert: certificates.clientCert, key: certificates.clientKey },
    });
    expect((await withCertificate.join('g', { id: 'mtls', host: 'tls.test', pid: 1 })).info.id).toBe('mtls');

    const without = backends.make({ hosts: mutual.hosts, tls: { ca: certificates.ca } });
    const { error } = await rejection(without.connect());
    expect(error.code).toBe('ERR_BACKEND_UNAVAILABLE');
  });
});
