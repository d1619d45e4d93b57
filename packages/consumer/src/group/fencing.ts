import type { AllocatorBackend } from '../backend/types';

/** What a {@link FencingClock} does when the fence goes up or comes down. */
export interface FencingActions {
  /** Contact was lost for longer than the timeout, `silentMs` so far: stop handing out messages. */
  fence(silentMs: number): void;
  /** Contact is back on the same session: resume. */
  unfence(): void;
  /** Whether the clock is read at all (not before the member has joined, nor once it stops). */
  active(): boolean;
}

/**
 * The fencing clock: a member that has not heard from its backend for `timeout` ms fences itself (it stops handing
 * out messages and commits nothing), since by the time its session can expire another member may own its partitions.
 * The timeout is below the session timeout (checked at start). Contact is the backend's `lastContact`; the fence comes
 * down once contact is fresh again and the backend is connected on the same session.
 */
export class FencingClock {
  private fencedNow = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly backend: AllocatorBackend,
    private readonly timeout: () => number,
    private readonly actions: FencingActions,
  ) {}

  /** Whether the fence is up. */
  get fenced(): boolean {
    return this.fencedNow;
  }

  /** Reads the clock every quarter of the timeout (20 to 250 ms) until {@link stop}. */
  start(): void {
    this.stop();
    const interval = Math.max(20, Math.min(250, Math.floor(this.timeout() / 4)));
    this.timer = setInterval(() => this.check(), interval);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Reads the clock now: raises the fence past the timeout, lowers it once contact is back. */
  check(): void {
    if (!this.actions.active()) return;
    const silent = performance.now() - this.backend.lastContact;
    if (!this.fencedNow && silent > this.timeout()) {
      this.fencedNow = true;
      this.actions.fence(silent);
    } else if (this.fencedNow && silent <= this.timeout() && this.backend.state === 'connected') {
      this.fencedNow = false;
      this.actions.unfence();
    }
  }

  /**
   * Lowers the fence without the clock's say: a new session (a rejoin) or a fresh start owns nothing yet that a fence
   * would guard. Returns whether it was up.
   */
  reset(): boolean {
    const was = this.fencedNow;
    this.fencedNow = false;
    return was;
  }
}
