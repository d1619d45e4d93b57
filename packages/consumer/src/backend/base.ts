import { EventEmitter } from 'node:events';
import { BackendErrorImpl, type BackendErrorOptions } from './errors';
import { emitToEach } from './events';
import type { AllocatorBackendEvents, BackendError, BackendErrorCode, BackendState, MemberInfo } from './types';

type Listener<E extends keyof AllocatorBackendEvents> = (...args: AllocatorBackendEvents[E]) => void;

/**
 * What every allocator backend shares, so that the three here (and a new one) behave alike where the contract asks:
 *
 * - `on` / `off` for {@link AllocatorBackendEvents};
 * - `emit`, which calls each listener on its own, so that one that throws does not keep the others from the event;
 *   what it threw is reported as an `ERR_MALFORMED_RECORD` error;
 * - `report`, for errors nobody called for (a watch read that failed, a malformed entry): an `error` event, or a
 *   process warning when nobody listens (an `error` event without a listener would end the process), and nothing
 *   once the backend is closed;
 * - `deliver`, which calls a watch listener and reports what it throws;
 * - the checks of group names, partition ids and values before any I/O, and the one reading of member entries
 *   ({@link parseMemberEntry}).
 *
 * A backend extends it, implements the I/O of the {@link AllocatorBackend} methods, and makes its errors with
 * {@link AllocatorBackendBase.error}, so that every error it raises is a {@link BackendErrorImpl} (a backend
 * package may override `error` to raise its own subclass, named after it).
 *
 * @example
 * ```ts
 * class MyBackend extends AllocatorBackendBase implements AllocatorBackend {
 *   async claim(group: string, partition: string, value: string): Promise<boolean> {
 *     this.checkGroup(group);
 *     this.checkPartition(partition);
 *     this.checkValue(value, `${group}/${partition}`);
 *     // ... the I/O; on an unexpected failure:
 *     throw this.error('ERR_BACKEND_UNAVAILABLE', 'my store did not answer', { location: partition });
 *   }
 * }
 * ```
 */
export abstract class AllocatorBackendBase {
  /** The events. Subclasses may also use it for events of their own (their names must not collide). */
  protected readonly events = new EventEmitter();

  /** The session state, which the subclass moves; `report` stays quiet once it is `closed`. */
  protected currentState: BackendState = 'idle';
  /** `performance.now()` of the last sign of life from the server, which the subclass records. */
  protected contactAt = 0;

  /** Where the session stands: `idle`, `connecting`, `connected`, `disconnected`, `expired` or `closed`. */
  get state(): BackendState {
    return this.currentState;
  }

  /** `performance.now()` of the last contact with the server: what the member's fencing clock reads. */
  get lastContact(): number {
    return this.contactAt;
  }

  /** Subscribes to a session event (see {@link AllocatorBackendEvents} for when each fires and what to do). */
  on<E extends keyof AllocatorBackendEvents>(event: E, listener: Listener<E>): this {
    this.events.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Removes a listener added with `on`. */
  off<E extends keyof AllocatorBackendEvents>(event: E, listener: Listener<E>): this {
    this.events.off(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** The error this backend raises; a backend package overrides it to raise its own subclass. */
  protected error(code: BackendErrorCode, message: string, options: BackendErrorOptions = {}): BackendErrorImpl {
    return new BackendErrorImpl(code, message, options);
  }

  /** Emits an event to each listener on its own; a listener that throws is reported, the others still hear it. */
  protected emit<E extends keyof AllocatorBackendEvents>(event: E, ...args: AllocatorBackendEvents[E]): void {
    emitToEach(this.events, event, args, (thrown) => {
      // A throwing `error` listener has nowhere left to report to.
      if (event !== 'error') {
        this.report(
          this.error('ERR_MALFORMED_RECORD', `a listener of ${event} threw: ${messageOf(thrown)}`, { cause: thrown }),
        );
      }
    });
  }

  /**
   * Reports an error nobody called for: an `error` event, or a process warning when there is no `error` listener.
   * Nothing once the backend is closed: its owner has stopped listening, and what fails then is the shutdown.
   */
  protected report(error: BackendError): void {
    if (this.state === 'closed') return;
    if (this.events.listenerCount('error') === 0) process.emitWarning(error.message, { code: error.code });
    else this.emit('error', error);
  }

  /** Calls a watch listener with what it watches; what it throws is reported (`ERR_MALFORMED_RECORD`). */
  protected deliver(location: string, call: () => void): void {
    try {
      call();
    } catch (thrown) {
      this.report(
        this.error('ERR_MALFORMED_RECORD', `a watch listener threw on the state it was given: ${messageOf(thrown)}`, {
          location,
          cause: thrown,
        }),
      );
    }
  }

  /** A group name: a non-empty string without control characters (each backend may forbid more). */
  protected checkGroup(group: string): void {
    if (typeof group !== 'string' || group === '' || CONTROL.test(group)) {
      throw this.error(
        'ERR_INVALID_CONFIG',
        `invalid group name ${JSON.stringify(group)}: a non-empty string without control characters`,
      );
    }
  }

  /** A partition id: a non-empty string without control characters (each backend may forbid more). */
  protected checkPartition(partition: string): void {
    if (typeof partition !== 'string' || partition === '' || CONTROL.test(partition)) {
      throw this.error(
        'ERR_INVALID_CONFIG',
        `invalid partition id ${JSON.stringify(partition)}: a non-empty string without control characters`,
      );
    }
  }

  /** A value to store: a string. */
  protected checkValue(value: unknown, location: string): asserts value is string {
    if (typeof value !== 'string') {
      throw this.error('ERR_INVALID_CONFIG', 'the value to store must be a string', { location });
    }
  }
}

const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Reads a member entry as stored (JSON {@link MemberInfo}): the info, or what is wrong with it, for an
 * `ERR_MALFORMED_RECORD` that names the entry.
 */
export function parseMemberEntry(text: string): MemberInfo | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return 'not a JSON object';
  const { id, host, pid, weight, named } = parsed as Record<string, unknown>;
  if (typeof id !== 'string' || id.length === 0) return '`id` is not a non-empty string';
  if (typeof host !== 'string') return '`host` is not a string';
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid < 0) return '`pid` is not a non-negative integer';
  if (weight !== undefined && (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0)) {
    return '`weight` is not a positive number';
  }
  if (named !== undefined && typeof named !== 'boolean') return '`named` is not a boolean';
  return { id, host, pid, ...(weight === undefined ? {} : { weight }), ...(named === true ? { named: true } : {}) };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
