import type { EventEmitter } from 'node:events';
import type { AllocatorBackendEvents } from './types';

/**
 * Calls each listener of an event on its own, for backend implementations: one that throws must not keep the
 * listeners after it (the partition allocator's rejoin on `expired`) from hearing the event. What a listener throws goes
 * to `onThrow`. `once` listeners are removed as `emit` removes them.
 */
export function emitToEach<E extends keyof AllocatorBackendEvents>(
  emitter: EventEmitter,
  event: E,
  args: AllocatorBackendEvents[E],
  onThrow: (error: unknown) => void,
): void;
/** The same for any typed emitter, such as the partition allocator's own events. */
export function emitToEach<T extends Record<keyof T, unknown[]>, E extends keyof T & (string | symbol)>(
  emitter: EventEmitter<T>,
  event: E,
  args: T[E],
  onThrow: (error: unknown) => void,
): void;
export function emitToEach(
  emitter: EventEmitter,
  event: string | symbol,
  args: unknown[],
  onThrow: (error: unknown) => void,
): void {
  // rawListeners, not listeners: the wrapper of a `once` listener removes it before calling it.
  for (const listener of emitter.rawListeners(event)) {
    try {
      (listener as (...a: unknown[]) => void)(...args);
    } catch (error) {
      onThrow(error);
    }
  }
}
