import type { AllocatorBackend } from '../backend/types';
import { KielError } from '../errors';
import { parseControl, type ControlRecord } from './records';

/** What {@link groupControl} reports: whether the group is frozen, since when and why. */
export interface GroupControlState {
  readonly frozen: boolean;
  /** `Date.now()` when the freeze began. */
  readonly since?: number;
  readonly reason?: string;
}

const checkGroup = (group: unknown): void => {
  if (typeof group !== 'string' || group === '' || /[/\0]/.test(group)) {
    throw new KielError('ERR_INVALID_CONFIG', 'group: expected a non-empty string without "/"', { option: 'group' });
  }
};

/** Reads the control record; an absent record is an empty one. */
export async function readControl(
  backend: AllocatorBackend,
  group: string,
): Promise<{ control: ControlRecord; version: string | null }> {
  const record = await backend.readRecord(group, 'control');
  if (record === null) return { control: {}, version: null };
  return { control: parseControl(record.value, record.location), version: record.version };
}

/**
 * Changes the control record by compare-and-set: `change` gets the current record and returns the new one, or
 * undefined for no write. Retried when another writer came first.
 */
export async function updateControl(
  backend: AllocatorBackend,
  group: string,
  change: (current: ControlRecord) => ControlRecord | undefined,
): Promise<ControlRecord> {
  for (let attempt = 0; ; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(100, 5 * attempt)));
    const { control, version } = await readControl(backend, group);
    const next = change(control);
    if (next === undefined) return control;
    if ((await backend.writeRecord(group, 'control', JSON.stringify(next), version)) !== null) return next;
    if (attempt >= 100) {
      throw new KielError('ERR_BACKEND', `the control record of group ${group} kept changing under 100 writes`, {
        retriable: true,
      });
    }
  }
}

const stateOf = (control: ControlRecord): GroupControlState =>
  control.frozen
    ? {
        frozen: true,
        since: control.frozen.since,
        ...(control.frozen.reason !== undefined ? { reason: control.frozen.reason } : {}),
      }
    : { frozen: false };

/**
 * Freezes a group's allocation: until {@link unfreezeGroup}, its leader publishes nothing new. Members keep the
 * partitions they have; members that join wait without partitions; the partitions of a member that leaves or
 * crashes wait without an owner (a member whose session ends still fences itself and lets go of its claims). For
 * deploys and incidents. Idempotent: freezing a frozen group keeps its first `since` and reason.
 *
 * Connects the backend if it is not connected yet (the caller closes it).
 *
 * @example
 * import { freezeGroup, unfreezeGroup } from '@kiel/consumer';
 * import { ZooKeeperBackend } from '@kiel/allocator-zk';
 * const backend = new ZooKeeperBackend({ hosts: '127.0.0.1:2181' });
 * await freezeGroup(backend, 'billing', { reason: 'deploy 42' });
 * // ... restart the members one by one ...
 * await unfreezeGroup(backend, 'billing');
 * await backend.close();
 */
export async function freezeGroup(
  backend: AllocatorBackend,
  group: string,
  options: { readonly reason?: string } = {},
): Promise<GroupControlState> {
  checkGroup(group);
  if (options.reason !== undefined && typeof options.reason !== 'string') {
    throw new KielError('ERR_INVALID_CONFIG', 'reason: expected a string', { option: 'reason' });
  }
  await backend.connect();
  const control = await updateControl(backend, group, (current) =>
    current.frozen
      ? undefined
      : {
          ...current,
          frozen: { since: Date.now(), ...(options.reason !== undefined ? { reason: options.reason } : {}) },
        },
  );
  return stateOf(control);
}

/**
 * Lifts a freeze: the leader publishes an allocation for the members and partitions of now (moving the partitions
 * of members that left meanwhile, giving some to members that joined). Idempotent.
 */
export async function unfreezeGroup(backend: AllocatorBackend, group: string): Promise<GroupControlState> {
  checkGroup(group);
  await backend.connect();
  const control = await updateControl(backend, group, (current) => {
    if (!current.frozen) return undefined;
    const { frozen: _frozen, ...rest } = current;
    return rest;
  });
  return stateOf(control);
}

/** Whether a group is frozen, since when and why. Connects the backend if needed. */
export async function groupControl(backend: AllocatorBackend, group: string): Promise<GroupControlState> {
  checkGroup(group);
  await backend.connect();
  return stateOf((await readControl(backend, group)).control);
}
