// Shared helpers of the integration tests: the etcd of the local stack, random prefixes, bounded waits.
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import { Etcd3 } from 'etcd3';
import type { EndToEndBackend } from '@kiel/test-kit';
import { EtcdBackend } from '../src';
import type { EtcdBackendOptions } from '../src';

/** The shared etcd of the local stack (never paused or stopped by these tests). */
export const sharedHosts = process.env.ETCD_HOSTS ?? '127.0.0.1:2379';

/** A raw etcd3 client, to look at what the backend wrote and to play a second, independent party. */
export function rawClient(hosts: string, options: { auth?: { username: string; password: string } } = {}): Etcd3 {
  return new Etcd3({ hosts: hosts.split(',').map((h) => `http://${h.trim()}`), ...options });
}

/** A prefix no other test uses. */
export function randomPrefix(): string {
  return `kiel-test-${randomUUID()}/`;
}

/** Every backend a test makes, closed in `closeAll`. */
export class Backends {
  private readonly open: EtcdBackend[] = [];

  constructor(private readonly defaults: EtcdBackendOptions) {}

  make(options: Partial<EtcdBackendOptions> = {}): EtcdBackend {
    const backend = new EtcdBackend({ ...this.defaults, ...options });
    this.open.push(backend);
    return backend;
  }

  async connected(options: Partial<EtcdBackendOptions> = {}): Promise<EtcdBackend> {
    const backend = this.make(options);
    await backend.connect();
    return backend;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.open.splice(0).map((b) => b.close()));
  }
}

/** The rejection of `promise` (fails when it resolves), with how long it took. */
export async function rejection(
  promise: Promise<unknown>,
): Promise<{ error: { code: string; retriable: boolean; message: string; location?: string }; ms: number }> {
  const started = Date.now();
  const outcome = await promise.then(
    (value) => ({ resolved: true as const, value }),
    (error: unknown) => ({ resolved: false as const, error }),
  );
  if (outcome.resolved) throw new Error(`expected a rejection, got ${JSON.stringify(outcome.value)}`);
  return { error: outcome.error as { code: string; retriable: boolean; message: string }, ms: Date.now() - started };
}

/** A timestamped log of a backend's events, to check their order. */
export function recordEvents(backend: EtcdBackend): Array<{ event: string; at: number; info: unknown }> {
  const log: Array<{ event: string; at: number; info: unknown }> = [];
  for (const event of ['connected', 'disconnected', 'expired', 'error'] as const) {
    backend.on(event, (info: unknown) => log.push({ event, at: Date.now(), info }));
  }
  return log;
}

/**
 * This package's side of the multi-process scenarios of @kiel/consumer's test helpers (end to end, safety under
 * real handlers): the shared etcd and the member fixture.
 */
export const endToEndBackend: EndToEndBackend = {
  name: 'EtcdBackend',
  fixture: path.join(__dirname, 'fixtures/group-member-process.js'),
  hosts: sharedHosts,
  // etcd grants 2 s leases at least.
  sessionTimeout: 2_000,
  newNamespace: randomPrefix,
  removeNamespaces: async (prefixes) => {
    const admin = rawClient(sharedHosts);
    try {
      for (const prefix of prefixes) await admin.delete().prefix(prefix);
    } finally {
      admin.close();
    }
  },
};
