import type { EventEmitter } from 'node:events';
import type { AllocatorBackendEvents } from './types';

/**
 * Calls each listener of a backend event on its own, for backend implementations: one that throws must not keep
 * the listeners after it (the group coordinator's rejoin on `expired`) from hearing the event. What a listener
 * throws goes to `onThrow`.
 */
export function emitToEach<E extends keyof AllocatorBackendEvents>(
  emitter: EventEmitter,
  event: E,
  args: AllocatorBackendEvents[E],
  onThrow: (error: unknown) => void,
): void {
  for (const listener of emitter.listeners(event)) {
    try {
      (listener as (...a: AllocatorBackendEvents[E]) => void)(...args);
    } catch (error) {
      onThrow(error);
    }
  }
}
