import type { RecordName } from '@kiel/consumer';
import { ZooKeeperBackendError } from './errors';

/** Prefix of member znodes; ZooKeeper appends a 10-digit sequence number, which is the member's `order`. */
export const MEMBER_PREFIX = 'member-';

const RECORD_NAMES: ReadonlySet<string> = new Set<RecordName>(['partitions', 'allocation', 'control']);

/**
 * The znode layout under `rootPath` (default `/kiel`), per group `G`:
 *
 * - `groups/G/members/member-<seq>`: EPHEMERAL_SEQUENTIAL, the member's JSON `{id, host, pid, weight, named}`;
 * - `groups/G/partitions`, `groups/G/allocation`, `groups/G/control`: persistent records, compare-and-set on the
 *   znode version;
 * - `groups/G/owners/<topic:partition>`: EPHEMERAL claims;
 * - `groups/G/markers/<topic:partition>`: persistent markers (in-flight offsets, stall reports).
 *
 * A group name and a partition id each become one znode name: no "/", not "." or "..", no control characters
 * (`ERR_INVALID_CONFIG` otherwise).
 */
export class ZnodeLayout {
  constructor(readonly rootPath: string) {}

  members(group: string): string {
    return this.leaf(group, 'members');
  }

  owners(group: string): string {
    return this.leaf(group, 'owners');
  }

  markers(group: string): string {
    return this.leaf(group, 'markers');
  }

  record(group: string, name: RecordName): string {
    if (!RECORD_NAMES.has(name)) {
      throw new ZooKeeperBackendError('ERR_INVALID_CONFIG', `unknown record ${JSON.stringify(name)}`);
    }
    return this.leaf(group, name);
  }

  claim(group: string, partition: string): string {
    checkName('partition', partition);
    return `${this.owners(group)}/${partition}`;
  }

  marker(group: string, partition: string): string {
    checkName('partition', partition);
    return `${this.markers(group)}/${partition}`;
  }

  private leaf(group: string, leaf: 'members' | 'owners' | 'markers' | RecordName): string {
    checkName('group', group);
    return `${this.rootPath}/groups/${group}/${leaf}`;
  }
}

function checkName(what: string, name: string): void {
  if (typeof name !== 'string' || name === '' || name === '.' || name === '..' || /[/\u0000-\u001f\u007f]/.test(name)) {
    throw new ZooKeeperBackendError(
      'ERR_INVALID_CONFIG',
      `invalid ${what} name ${JSON.stringify(name)}: it becomes one znode name (no "/", not "." or "..")`,
    );
  }
}
