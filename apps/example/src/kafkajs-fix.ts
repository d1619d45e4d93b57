/**
 * A fix for kafkajs 2.2.4's request queue, which made every `kiel` command that produces (through kafkajs) print
 * `TimeoutNegativeWarning: -1796285425928 is a negative number` on Node 24 (Node 22 and earlier clamp silently).
 *
 * The cause, in kafkajs's src/network/requestQueue/index.js: after every response `scheduleCheckPendingRequests()`
 * calls `setTimeout(check, this.throttledUntil - Date.now())`. `throttledUntil` starts at -1 and changes only when
 * a broker throttles the client, so the delay is about minus the current epoch in milliseconds. Node clamps it to
 * 1 ms (Node 24 warns as it does), the timer finds nothing pending and schedules itself again: besides the
 * warning, a 1 ms timer loop for as long as a connection is open. The bug is tulios/kafkajs#1751 (and #1704); no
 * kafkajs release fixes it (2.2.4 is the last) and no client option avoids it, because `throttledUntil` is
 * internal. So the CLI, the only place our shipped code uses kafkajs, replaces that one method, once, with the
 * same logic minus the pointless timer: when no request waits and no throttle is in effect there is nothing to
 * check later (a request that has to wait is queued by `push`, which schedules the check itself).
 *
 * Done here rather than as a patch of node_modules so that it holds wherever `@kiel/example` is installed. It
 * applies only to the exact kafkajs version we pin and only if the method still has the faulty expression;
 * otherwise it leaves kafkajs alone (and the CLI test that asserts a clean stderr on Node 24 says so).
 */
import * as path from 'node:path';

interface RequestQueue {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}

/** kafkajs's own CHECK_PENDING_REQUESTS_INTERVAL (ms): how soon a queued request is retried when not throttled. */
const CHECK_PENDING_REQUESTS_INTERVAL = 10;
const FIXED_VERSION = '2.2.4';

let applied: boolean | undefined;

/** Applies the fix (once). Returns whether kafkajs's request queue now has it. */
export function fixKafkajsRequestQueue(): boolean {
  if (applied !== undefined) return applied;
  applied = false;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const pkg = require('kafkajs/package.json') as { version: string };
  if (pkg.version !== FIXED_VERSION) return false;
  const file = path.join(path.dirname(require.resolve('kafkajs/package.json')), 'src/network/requestQueue/index.js');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const RequestQueueClass = require(file) as { prototype: RequestQueue };
  const proto = RequestQueueClass.prototype;
  if (!/this\.throttledUntil - Date\.now\(\)/.test(String(proto.scheduleCheckPendingRequests))) return false;
  proto.scheduleCheckPendingRequests = function scheduleCheckPendingRequests(this: RequestQueue) {
    if (this.throttleCheckTimeoutId) return;
    const throttledFor = this.throttledUntil - Date.now();
    let delay: number;
    if (this.pending.length > 0) delay = throttledFor > 0 ? throttledFor : CHECK_PENDING_REQUESTS_INTERVAL;
    else if (throttledFor > 0) delay = throttledFor;
    else return; // nothing waits and nothing throttles: nothing to check later
    this.throttleCheckTimeoutId = setTimeout(() => {
      this.throttleCheckTimeoutId = null;
      this.checkPendingRequests();
    }, delay);
  };
  applied = true;
  return true;
}
