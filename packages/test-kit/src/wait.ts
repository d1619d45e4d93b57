// Bounded waits: the one polling wait of every package's tests, and the small timing helpers around it.

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Polls `condition` every 20 ms until it holds, or fails after `timeoutMs` with an error that names `what` (and adds
 * `detail()`, e.g. what child processes said, when given).
 *
 * @example
 * await waitFor('member a to own partition 0', () => a.owned().includes('t:0'), 10_000);
 */
export async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
  detail?: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail ? `\n${detail()}` : ''}`);
    }
    await sleep(20);
  }
}

/** A promise the test opens when it chooses: holds a step (a backend call, a hook) at a chosen point. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}
