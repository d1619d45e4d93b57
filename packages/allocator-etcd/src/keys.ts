import type { RecordName } from '@kiel/consumer';
import { EtcdBackendError } from './errors';

/**
 * The key layout, per group `G` under the prefix `P` (default `kiel/`):
 *
 * - `P groups/G/members/<lease id, hex>`: one member entry per lease, JSON MemberInfo, bound to the lease;
 * - `P groups/G/partitions` and `P groups/G/allocation`: the shared records, persistent;
 * - `P groups/G/owners/<topic:partition>`: one claim per partition, bound to the claimer's lease;
 * - `P groups/G/markers/<topic:partition>`: one marker per partition (in-flight offset, stall report), persistent.
 *
 * Group names and partition ids may hold any character, so `%` and `/` in them are percent-encoded: a group
 * called `a/members/b` must not read as a member of group `a`.
 */
export class KeyLayout {
  constructor(readonly prefix: string) {}

  group(group: string): string {
    return `${this.prefix}groups/${segment(group, 'group')}/`;
  }

  membersPrefix(group: string): string {
    return `${this.group(group)}members/`;
  }

  member(group: string, leaseId: string): string {
    return `${this.membersPrefix(group)}${BigInt(leaseId).toString(16)}`;
  }

  record(group: string, name: RecordName): string {
    if (name !== 'partitions' && name !== 'allocation' && name !== 'control') {
      throw new EtcdBackendError('ERR_INVALID_CONFIG', `unknown record name ${JSON.stringify(name)}`);
    }
    return `${this.group(group)}${name}`;
  }

  ownersPrefix(group: string): string {
    return `${this.group(group)}owners/`;
  }

  claim(group: string, partition: string): string {
    return `${this.ownersPrefix(group)}${segment(partition, 'partition')}`;
  }

  markersPrefix(group: string): string {
    return `${this.group(group)}markers/`;
  }

  marker(group: string, partition: string): string {
    return `${this.markersPrefix(group)}${segment(partition, 'partition')}`;
  }

  /** The partition id of a claim (or marker) key listed under {@link ownersPrefix}. */
  partitionOf(ownersPrefix: string, key: string): string {
    return decodeSegment(key.slice(ownersPrefix.length));
  }
}

function segment(value: string, what: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new EtcdBackendError('ERR_INVALID_CONFIG', `the ${what} must be a non-empty string`);
  }
  return value.replace(/[%/]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function decodeSegment(text: string): string {
  return text.replace(/%(25|2F)/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** The end of the key range holding every key that starts with `prefix` (etcd's "prefix + 1"). */
export function prefixRangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  // A prefix of only 0xff bytes: every key from it onwards.
  return Buffer.from([0]);
}
