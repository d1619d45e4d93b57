import { MultiBar, Presets } from 'cli-progress';
import { log } from '../../common';
import type { Worker } from './worker';

/**
 * The demo's live view on stderr: on a terminal, a progress bar per worker and one for the whole topic; otherwise a
 * status line every 2 s. Lines said through it are time-stamped and kept above the bars.
 */
export class LiveView {
  private bars: MultiBar | undefined;
  private readonly totalBar;
  private readonly ticker: NodeJS.Timeout;
  private readonly start = performance.now();

  constructor(
    private readonly workers: readonly Worker[],
    private readonly progress: () => { produced: number; consumed: number; total: number },
  ) {
    const tty = process.stderr.isTTY === true;
    if (tty) {
      this.bars = new MultiBar(
        {
          stream: process.stderr,
          format: '{name} |{bar}| {value} handled  {info}',
          hideCursor: true,
          clearOnComplete: false,
          autopadding: true,
        },
        Presets.shades_classic,
      );
    }
    this.totalBar = this.bars?.create(progress().total, 0, { name: 'all', info: '' });
    this.ticker = setInterval(
      () => {
        this.refresh();
        const { produced, consumed } = this.progress();
        this.totalBar?.update(consumed, { name: 'all', info: `produced ${produced}` });
        if (!tty) this.say(this.statusLine());
      },
      tty ? 200 : 2000,
    );
  }

  /** Milliseconds since the demo started. */
  since(): number {
    return performance.now() - this.start;
  }

  /** A time-stamped line, above the bars. */
  say(line: string): void {
    const stamped = `[${(this.since() / 1000).toFixed(1).padStart(5)}s] ${line}`;
    if (this.bars) this.bars.log(`${stamped}\n`);
    else log(stamped);
  }

  /** Gives a new worker its bar. */
  add(worker: Worker): void {
    if (this.bars) worker.bar = this.bars.create(this.progress().total, 0, { name: worker.name, info: 'starting' });
  }

  /** Updates each worker's rate and bar. */
  refresh(): void {
    const now = performance.now();
    for (const w of this.workers) {
      const dt = (now - w.sample.at) / 1000;
      if (dt >= 1) {
        w.rate = Math.round((w.handled - w.sample.handled) / dt);
        w.sample = { handled: w.handled, at: now };
      }
      w.bar?.update(w.handled, { name: w.name, info: `${w.owned.length} partitions  ${w.rate} msg/s  ${w.state}` });
    }
  }

  /** Stops the ticker and the bars, so the verdict prints on a clean stream. Safe to call twice. */
  stop(): void {
    clearInterval(this.ticker);
    this.bars?.stop();
    this.bars = undefined;
  }

  private statusLine(): string {
    const { produced, consumed, total } = this.progress();
    return (
      `produced ${produced}/${total}, consumed ${consumed} | ` +
      this.workers
        .filter((w) => w.state !== 'left' && w.state !== 'killed' && w.state !== 'failed')
        .map((w) => `${w.name}: ${w.owned.length} partitions, ${w.handled} handled, ${w.rate} msg/s`)
        .join(' | ')
    );
  }
}
