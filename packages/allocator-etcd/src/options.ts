import { EtcdBackendError } from './errors';

/** etcd user credentials. The user needs read and write access to every key under the backend's `prefix`. */
export interface EtcdAuthOptions {
  readonly user: string;
  readonly password: string;
}

/** TLS material for `https://` hosts, as PEM text or buffers. */
export interface EtcdTlsOptions {
  /** The CA that signed the etcd servers' certificates. Without it, the system's roots are trusted. */
  readonly ca?: string | Buffer;
  /** A client certificate chain, for etcd's `--client-cert-auth`. Needs `key`. */
  readonly cert?: string | Buffer;
  /** The private key of `cert`. */
  readonly key?: string | Buffer;
}

/** Options of {@link EtcdBackend}. Only `hosts` is required. */
export interface EtcdBackendOptions {
  /**
   * The etcd cluster's client endpoints: `host:port` or `http(s)://host:port`, as one comma-separated string or an
   * array. `https://` (or the `tls` option) turns TLS on for every host; mixing schemes is refused.
   */
  readonly hosts: string | readonly string[];
  /**
   * Lease time-to-live in whole seconds: how long the members' entries and claims survive after this process goes
   * silent. Default 10, like the ZooKeeper backend's session timeout. etcd grants at least 2 s with default flags (a smaller request is granted 2 s); the granted
   * value is reported by `sessionTimeout`.
   */
  readonly ttl?: number;
  /** Key prefix under which every group lives (`<prefix>groups/<group>/...`). Default `kiel/`; a `/` is appended. */
  readonly prefix?: string;
  /**
   * User and password when etcd runs with authentication enabled: `{ user, password }`, or `'user:password'` (split
   * at the first colon), the form the ZooKeeper backend takes.
   */
  readonly auth?: EtcdAuthOptions | string;
  /** TLS material; implies `https://` for hosts given without a scheme. */
  readonly tls?: EtcdTlsOptions;
  /** Milliseconds `connect()` may take (authentication, an access check, the lease grant). Default 10000. */
  readonly connectTimeout?: number;
  /** Milliseconds any other call may take before it rejects with `ERR_BACKEND_TIMEOUT`. Default 5000. */
  readonly operationTimeout?: number;
}

/** Defaults of {@link EtcdBackendOptions}. */
export const ETCD_BACKEND_DEFAULTS = {
  ttl: 10,
  prefix: 'kiel/',
  connectTimeout: 10_000,
  operationTimeout: 5_000,
} as const;

/** Options after validation, with defaults applied and hosts normalised to URLs. */
export interface ResolvedEtcdBackendOptions {
  readonly hosts: readonly string[];
  readonly ttl: number;
  readonly prefix: string;
  readonly auth: EtcdAuthOptions | undefined;
  readonly tls: EtcdTlsOptions | undefined;
  readonly secure: boolean;
  readonly connectTimeout: number;
  readonly operationTimeout: number;
}

// Timeouts beyond a day are surely a unit mistake (seconds vs milliseconds, or a raw Infinity).
const MAX_TIMEOUT_MS = 24 * 3600 * 1000;
// etcd's own limit on lease TTLs (MaxLeaseTTL, 9 000 000 000 s) is far beyond anything useful; a day is plenty.
const MAX_TTL_SECONDS = 24 * 3600;

function invalid(message: string): EtcdBackendError {
  return new EtcdBackendError('ERR_INVALID_CONFIG', `EtcdBackend: ${message}`);
}

function parseHost(entry: string, tlsOption: boolean): { url: string; secure: boolean } {
  const text = entry.trim();
  if (text.length === 0) throw invalid('empty entry in `hosts`');
  const match = /^(?:(https?):\/\/)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})\/?$/.exec(text);
  if (!match) {
    throw invalid(`host ${JSON.stringify(entry)} is not \`host:port\` or \`http(s)://host:port\``);
  }
  const [, scheme, host, portText] = match;
  const port = Number(portText);
  if (port < 1 || port > 65535) throw invalid(`host ${JSON.stringify(entry)} has an invalid port ${portText}`);
  const secure = scheme === undefined ? tlsOption : scheme === 'https';
  return { url: `${secure ? 'https' : 'http'}://${host}:${port}`, secure };
}

function timeout(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > MAX_TIMEOUT_MS) {
    throw invalid(
      `\`${name}\` must be a positive number of milliseconds up to ${MAX_TIMEOUT_MS}, got ${String(value)}`,
    );
  }
  return value;
}

function resolveAuth(auth: EtcdAuthOptions | string | undefined): EtcdAuthOptions | undefined {
  if (auth === undefined) return undefined;
  if (typeof auth === 'string') {
    const colon = auth.indexOf(':');
    if (colon <= 0) throw invalid('`auth` as a string must be `user:password`');
    return { user: auth.slice(0, colon), password: auth.slice(colon + 1) };
  }
  if (typeof auth !== 'object' || auth === null || typeof auth.user !== 'string' || auth.user.length === 0) {
    throw invalid('`auth.user` must be a non-empty string');
  }
  if (typeof auth.password !== 'string') throw invalid('`auth.password` must be a string');
  return { user: auth.user, password: auth.password };
}

/** Validates `options` and applies the defaults. Throws `ERR_INVALID_CONFIG` naming the bad option. */
export function resolveOptions(options: EtcdBackendOptions): ResolvedEtcdBackendOptions {
  if (typeof options !== 'object' || options === null) throw invalid('options must be an object with `hosts`');
  const rawHosts: unknown = options.hosts;
  let entries: string[];
  if (typeof rawHosts === 'string') entries = rawHosts.split(',');
  else if (Array.isArray(rawHosts) && rawHosts.every((h) => typeof h === 'string')) entries = [...rawHosts];
  else throw invalid('`hosts` must be a string or an array of strings');
  if (entries.length === 0 || entries.every((h) => h.trim().length === 0)) throw invalid('`hosts` is empty');

  if (options.tls !== undefined && (typeof options.tls !== 'object' || options.tls === null)) {
    throw invalid('`tls` must be an object');
  }
  if (options.tls !== undefined && (options.tls.cert === undefined) !== (options.tls.key === undefined)) {
    throw invalid('`tls.cert` and `tls.key` go together');
  }
  const parsed = entries.map((h) => parseHost(h, options.tls !== undefined));
  const secure = parsed[0].secure;
  if (parsed.some((p) => p.secure !== secure)) throw invalid('`hosts` mixes http:// and https:// endpoints');
  if (!secure && options.tls !== undefined) throw invalid('`tls` is set but `hosts` are http://');

  const ttl = options.ttl ?? ETCD_BACKEND_DEFAULTS.ttl;
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_SECONDS) {
    throw invalid(`\`ttl\` must be a whole number of seconds from 1 to ${MAX_TTL_SECONDS}, got ${String(ttl)}`);
  }

  let prefix = options.prefix ?? ETCD_BACKEND_DEFAULTS.prefix;
  if (typeof prefix !== 'string' || prefix.length === 0 || prefix === '/') {
    throw invalid('`prefix` must be a non-empty string other than `/`');
  }
  if (!prefix.endsWith('/')) prefix += '/';

  const auth = resolveAuth(options.auth);

  return {
    hosts: parsed.map((p) => p.url),
    ttl,
    prefix,
    auth,
    tls: options.tls,
    secure,
    connectTimeout: timeout(options.connectTimeout, 'connectTimeout', ETCD_BACKEND_DEFAULTS.connectTimeout),
    operationTimeout: timeout(options.operationTimeout, 'operationTimeout', ETCD_BACKEND_DEFAULTS.operationTimeout),
  };
}
