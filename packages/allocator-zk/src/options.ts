import { createHash } from 'node:crypto';
import * as zookeeper from 'node-zookeeper-client';
import { ZooKeeperBackendError } from './errors';

/** A ZooKeeper permission, by name. */
export type ZooKeeperPermission = 'read' | 'write' | 'create' | 'delete' | 'admin';

/**
 * One entry of the ACL put on the nodes the backend creates. `scheme` and `id` are ZooKeeper's own: `world` /
 * `anyone`, `auth` / `` (whoever created the node, by their credentials), `digest` / `user:base64(sha1(user:password))`,
 * `ip` / `10.0.0.0/8`.
 */
export interface ZooKeeperAclEntry {
  readonly scheme: string;
  readonly id: string;
  /** The permissions granted, or `'all'`. */
  readonly permissions: readonly ZooKeeperPermission[] | 'all';
}

/** Options of {@link ZooKeeperBackend}. */
export interface ZooKeeperBackendOptions {
  /**
   * The whole ensemble: `'zk1:2181,zk2:2181,zk3:2181'` or `['zk1:2181', 'zk2:2181']`. A host without a port uses
   * 2181. No chroot suffix: use `rootPath`.
   */
  readonly hosts: string | readonly string[];
  /** Requested session timeout in milliseconds; the server clamps it to its own bounds. Default 10000. */
  readonly sessionTimeout?: number;
  /** Parent of every node this backend uses. Default `/kiel`, kiel's layout (`/kiel/groups/<group>/...`). */
  readonly rootPath?: string;
  /** Digest credentials, `user:password`, sent on every connection. */
  readonly auth?: string;
  /**
   * ACL of the nodes this backend creates. Default: with `auth`, all permissions for the authenticated creator only
   * (`auth` scheme); without it, all permissions for anyone (`world:anyone`).
   */
  readonly acl?: readonly ZooKeeperAclEntry[];
  /** How long `connect()` waits for a session before failing with `ERR_BACKEND_UNAVAILABLE`. Default 10000. */
  readonly connectTimeout?: number;
  /** Deadline of every ZooKeeper call, after which it fails with `ERR_BACKEND_TIMEOUT`. Default 5000. */
  readonly operationTimeout?: number;
}

/** A validated ensemble member. */
export interface ZooKeeperHost {
  readonly host: string;
  readonly port: number;
}

/** Options after validation, with defaults applied. */
export interface ResolvedOptions {
  readonly hosts: readonly ZooKeeperHost[];
  /** The connection string handed to node-zookeeper-client. */
  readonly connectionString: string;
  readonly sessionTimeout: number;
  readonly rootPath: string;
  readonly auth: string | undefined;
  readonly acl: readonly ZooKeeperAclEntry[];
  readonly connectTimeout: number;
  readonly operationTimeout: number;
}

const DEFAULT_PORT = 2181;
const DEFAULTS = { sessionTimeout: 10_000, rootPath: '/kiel', connectTimeout: 10_000, operationTimeout: 5_000 };
/** setTimeout's largest delay, and the largest session timeout the protocol's int32 can carry. */
const MAX_MILLISECONDS = 2 ** 31 - 1;
const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const PERMISSIONS: Readonly<Record<ZooKeeperPermission, number>> = {
  read: zookeeper.Permission.READ,
  write: zookeeper.Permission.WRITE,
  create: zookeeper.Permission.CREATE,
  delete: zookeeper.Permission.DELETE,
  admin: zookeeper.Permission.ADMIN,
};

function invalid(option: string, message: string): ZooKeeperBackendError {
  return new ZooKeeperBackendError('ERR_INVALID_CONFIG', `invalid option ${option}: ${message}`);
}

function parseHost(entry: string, index: number): ZooKeeperHost {
  const option = `hosts[${index}]`;
  const text = entry.trim();
  if (text === '') throw invalid(option, 'empty host');
  if (text.includes('/')) throw invalid(option, `${JSON.stringify(entry)} has a path; use the rootPath option instead`);
  if (text.startsWith('[') || text.split(':').length > 2) {
    throw invalid(option, `${JSON.stringify(entry)}: IPv6 literals are not supported by node-zookeeper-client`);
  }
  const [host = '', portText] = text.split(':');
  if (!HOSTNAME.test(host)) throw invalid(option, `${JSON.stringify(entry)} is not a host name or IPv4 address`);
  if (portText === undefined) return { host, port: DEFAULT_PORT };
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) throw invalid(option, `${JSON.stringify(entry)} has no valid port (1-65535)`);
  return { host, port };
}

function parseHosts(hosts: unknown): ZooKeeperHost[] {
  let entries: unknown[];
  if (typeof hosts === 'string') entries = hosts.trim() === '' ? [] : hosts.split(',');
  else if (Array.isArray(hosts)) entries = hosts;
  else throw invalid('hosts', 'expected a string such as "zk1:2181,zk2:2181" or an array of "host:port"');
  if (entries.length === 0) throw invalid('hosts', 'the host list is empty');
  return entries.map((entry, index) => {
    if (typeof entry !== 'string') throw invalid(`hosts[${index}]`, 'expected a "host:port" string');
    return parseHost(entry, index);
  });
}

function milliseconds(option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || value > MAX_MILLISECONDS) {
    throw invalid(
      option,
      `expected a whole number of milliseconds between 1 and ${MAX_MILLISECONDS}, got ${String(value)}`,
    );
  }
  return value;
}

function parseRootPath(value: unknown): string {
  if (value === undefined) return DEFAULTS.rootPath;
  if (typeof value !== 'string') throw invalid('rootPath', 'expected a string such as "/kiel"');
  const segments = value.split('/');
  const wellFormed =
    value.startsWith('/') &&
    segments.length > 1 &&
    segments.slice(1).every((s) => s !== '' && s !== '.' && s !== '..' && !/[\u0000-\u001f\u007f]/.test(s));
  if (!wellFormed) {
    throw invalid(
      'rootPath',
      `${JSON.stringify(value)} must be an absolute znode path like "/kiel", without a trailing slash`,
    );
  }
  if (segments[1] === 'zookeeper') throw invalid('rootPath', '/zookeeper is reserved by ZooKeeper itself');
  return value;
}

function parseAuth(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.indexOf(':') < 1) {
    throw invalid('auth', 'expected digest credentials "user:password"');
  }
  return value;
}

function parseAcl(value: unknown, auth: string | undefined): ZooKeeperAclEntry[] {
  if (value === undefined) {
    return auth === undefined
      ? [{ scheme: 'world', id: 'anyone', permissions: 'all' }]
      : [{ scheme: 'auth', id: '', permissions: 'all' }];
  }
  if (!Array.isArray(value) || value.length === 0) throw invalid('acl', 'expected a non-empty array of ACL entries');
  return value.map((entry: unknown, index) => {
    const option = `acl[${index}]`;
    const e = entry as Partial<ZooKeeperAclEntry> | null;
    if (typeof e !== 'object' || e === null || typeof e.scheme !== 'string' || e.scheme === '') {
      throw invalid(option, 'expected { scheme, id, permissions }');
    }
    if (typeof e.id !== 'string') throw invalid(option, 'id must be a string');
    if (e.scheme === 'auth' && auth === undefined) throw invalid(option, 'the "auth" scheme needs the auth option');
    const permissions = e.permissions;
    const valid =
      permissions === 'all' ||
      (Array.isArray(permissions) && permissions.length > 0 && permissions.every((p) => Object.hasOwn(PERMISSIONS, p)));
    if (!valid) throw invalid(option, `permissions must be 'all' or a list of ${Object.keys(PERMISSIONS).join(', ')}`);
    return { scheme: e.scheme, id: e.id, permissions: permissions as ZooKeeperAclEntry['permissions'] };
  });
}

/** Validates the constructor options; throws `ERR_INVALID_CONFIG` naming the option at fault. */
export function resolveOptions(options: ZooKeeperBackendOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw invalid('options', 'expected an object');
  const hosts = parseHosts(options.hosts);
  const auth = parseAuth(options.auth);
  return {
    hosts,
    connectionString: hosts.map(({ host, port }) => `${host}:${port}`).join(','),
    sessionTimeout: milliseconds('sessionTimeout', options.sessionTimeout, DEFAULTS.sessionTimeout),
    rootPath: parseRootPath(options.rootPath),
    auth,
    acl: parseAcl(options.acl, auth),
    connectTimeout: milliseconds('connectTimeout', options.connectTimeout, DEFAULTS.connectTimeout),
    operationTimeout: milliseconds('operationTimeout', options.operationTimeout, DEFAULTS.operationTimeout),
  };
}

/** The client's ACL objects for `entries`. */
export function toClientAcl(entries: readonly ZooKeeperAclEntry[]): zookeeper.ACL[] {
  return entries.map(({ scheme, id, permissions }) => {
    const perms =
      permissions === 'all' ? zookeeper.Permission.ALL : permissions.reduce((sum, name) => sum | PERMISSIONS[name], 0);
    return new zookeeper.ACL(perms, new zookeeper.Id(scheme, id));
  });
}

/**
 * The `digest` ACL id for `user:password`, as ZooKeeper computes it: `user:base64(sha1("user:password"))`. Use it to
 * grant a specific user access in the `acl` option.
 */
export function digestAclId(credentials: string): string {
  const user = credentials.slice(0, credentials.indexOf(':'));
  return `${user}:${createHash('sha1').update(credentials).digest('base64')}`;
}
