/// <reference lib="dom" />
/**
 * `kiel dashboard` in a real browser: headless Chromium (Debian's package, fetched by scripts/browser) driven by
 * playwright-core watches the page while a real group on ZooKeeper changes: members join, one leaves on SIGTERM, one
 * is killed with SIGKILL. The DOM must follow (ownership moves, the timeline gains each generation with its cause),
 * and the screenshot must not be blank.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { EtcdBackend } from '@kiel/allocator-etcd';
import { freezeGroup, unfreezeGroup } from '@kiel/consumer';
import type { DashboardState } from '../src/dashboard/monitor';
import * as net from 'node:net';
import { waitFor } from '@kiel/test-kit';
import { BROKERS, CliProcess, ETCD, runCli, runtimeWarnings, unique, ZK } from './helpers';

const ROOT = path.join(__dirname, '..', '..', '..');
/** Where the screenshot goes (git-ignored); the README's picture is a copy of one. */
export const SCREENSHOT = path.join(ROOT, '.stack', 'screenshots', 'dashboard.png');

const kafka = new Kafka({ clientId: 'kiel-dashboard-test', brokers: BROKERS.split(','), logLevel: logLevel.NOTHING });
const admin = kafka.admin();
const topic = unique('kiel-dash');
const group = unique('kiel-dash');
const processes: CliProcess[] = [];
let browser: Browser | undefined;

/** The Chromium executable: scripts/browser finds it, or installs Debian's package; no browser means a failure. */
function chromiumPath(): string {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'browser')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 600_000,
  });
  if (r.status !== 0) throw new Error('no Chromium for the browser test: scripts/browser failed (see above)');
  return r.stdout.trim();
}

beforeAll(async () => {
  await admin.connect();
  browser = await chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    // Root (as CI runs) cannot use Chromium's sandbox.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}, 600_000);

afterAll(async () => {
  for (const p of processes) p.kill('SIGKILL');
  await Promise.all(processes.map((p) => p.exited));
  await browser?.close();
  await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin.disconnect();
});

function member(): CliProcess {
  const p = new CliProcess([
    'work',
    ...['--group', group, '--topic', topic, '--backend', 'zk', '--zk', ZK, '--brokers', BROKERS],
    ...['--format', 'json', '--log-format', 'json', '--session-timeout', '3000'],
  ]);
  processes.push(p);
  return p;
}

async function memberId(p: CliProcess): Promise<string> {
  await waitFor(
    'the member to join',
    () => p.events().some((e) => e.event === 'joined'),
    30_000,
    () => p.stderrLines.join('\n'),
  );
  return p.events().find((e) => e.event === 'joined')!.member as string;
}

/** Partitions the grid shows as owned by `id`. */
const ownedOnPage = (page: Page, id: string) => page.locator(`#grid td.own[data-owner="${id}"]`).count();

/** Waits until the grid shows exactly these partition counts per member (and no other owner). */
async function waitForGrid(page: Page, expected: Record<string, number>): Promise<void> {
  await page.waitForFunction(
    (want) => {
      const cells = Array.from(document.querySelectorAll<HTMLElement>('#grid td.own'));
      const counts: Record<string, number> = {};
      for (const c of cells) counts[c.dataset.owner!] = (counts[c.dataset.owner!] ?? 0) + 1;
      return JSON.stringify(Object.entries(counts).sort()) === JSON.stringify(Object.entries(want).sort());
    },
    expected,
    { timeout: 45_000, polling: 100 },
  );
}

/** Waits for a timeline row whose cause contains `cause`, and returns its generation and handoff cell. */
async function waitForTimeline(page: Page, cause: string): Promise<{ generation: number; handoff: string }> {
  const row = page.locator(`#timeline tr[data-cause*="${cause}"]`).first();
  await row.waitFor({ timeout: 45_000 }).catch(async (err: Error) => {
    const rows = await page
      .locator('#timeline tr[data-generation]')
      .evaluateAll((trs) => trs.map((tr) => `${tr.getAttribute('data-generation')}: ${tr.getAttribute('data-cause')}`));
    throw new Error(`${err.message}\ntimeline on the page:\n  ${rows.join('\n  ')}`);
  });
  // Its handoff completes once the new owners hold their claims.
  await page.waitForFunction(
    (c) => {
      const tr = document.querySelector(`#timeline tr[data-cause*="${c}"]`);
      return tr !== null && !tr.classList.contains('pending');
    },
    cause,
    { timeout: 45_000 },
  );
  return {
    generation: Number(await row.getAttribute('data-generation')),
    handoff: (await row.locator('td.handoff').textContent())!,
  };
}

/** How many distinct colours a PNG has: a blank or failed page has a handful. */
function distinctColours(file: string): number {
  const png = PNG.sync.read(readFileSync(file));
  const seen = new Set<number>();
  for (let i = 0; i < png.data.length; i += 4) {
    seen.add((png.data[i]! << 16) | (png.data[i + 1]! << 8) | png.data[i + 2]!);
  }
  return seen.size;
}

it('follows a group as members join, leave and are killed; the screenshot is not blank', async () => {
  const produce = (count: number) =>
    runCli(['produce', '--topic', topic, '--count', String(count), '--partitions', '6', '--brokers', BROKERS]);
  expect((await produce(3000)).code).toBe(0);

  const dashboard = new CliProcess([
    'dashboard',
    ...['--group', group, '--backend', 'zk', '--zk', ZK, '--brokers', BROKERS, '--port', '0', '--interval', '0.5'],
  ]);
  processes.push(dashboard);
  await waitFor(
    'the dashboard address',
    () => dashboard.stdoutLines.length > 0,
    30_000,
    () => dashboard.stderrLines.join('\n'),
  );
  const url = dashboard.stdoutLines[0]!;
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);

  const page = await browser!.newPage({ viewport: { width: 1400, height: 1000 } });
  const external: string[] = [];
  page.on('request', (request) => {
    if (!request.url().startsWith(url)) external.push(request.url());
  });
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto(url);
  await page.locator('#status[data-state="live"]').waitFor({ timeout: 15_000 });
  await expect(page.locator('#group').textContent()).resolves.toBe(group);

  // A joins: it owns all six partitions, and the timeline shows the generation it joined in.
  const a = member();
  const idA = await memberId(a);
  await waitForGrid(page, { [idA]: 6 });
  await page.locator(`#members tr[data-member="${idA}"][data-health="ok"]`).waitFor({ timeout: 30_000 });

  // B joins: half of A's partitions move; the generation's handoff is timed.
  const b = member();
  const idB = await memberId(b);
  await waitForGrid(page, { [idA]: 3, [idB]: 3 });
  const joinedB = await waitForTimeline(page, `joined ${idB}`);
  expect(joinedB.handoff).toMatch(/^\d+(\.\d)? m?s$/);

  // C joins while messages flow.
  const c = member();
  const idC = await memberId(c);
  await waitForGrid(page, { [idA]: 2, [idB]: 2, [idC]: 2 });
  const joinedC = await waitForTimeline(page, `joined ${idC}`);
  expect(joinedC.generation).toBeGreaterThan(joinedB.generation);
  expect((await produce(6000)).code).toBe(0);

  // B leaves gracefully while messages flow: its partitions go to A and C. (Left or expired is judged from what the
  // dashboard can see: claims outliving the entry, or commits just before or after it. A member idle for longer
  // than that which leaves faster than the dashboard reads looks expired: the README says so. Before, this test sent
  // SIGTERM once the 6,000 messages above were handled, and a loaded machine judged B expired.)
  const handledByB = b.stdoutLines.length;
  const flowing = produce(30_000);
  await waitFor('B handling the new messages', () => b.stdoutLines.length > handledByB + 100, 30_000);
  b.kill('SIGTERM');
  expect(await b.exited).toEqual({ code: 0, signal: null });
  expect((await flowing).code).toBe(0);
  await waitForGrid(page, { [idA]: 3, [idC]: 3 });
  const leftB = await waitForTimeline(page, `left ${idB}`);
  expect(leftB.generation).toBeGreaterThan(joinedC.generation);
  expect(await ownedOnPage(page, idB)).toBe(0);

  // C is killed: its session expires after 3 s, its partitions go to A.
  c.kill('SIGKILL');
  await c.exited;
  await waitForGrid(page, { [idA]: 6 });
  const expiredC = await waitForTimeline(page, `expired ${idC}`);
  expect(expiredC.generation).toBeGreaterThan(leftB.generation);

  // D joins, so the picture ends with two members sharing the work.
  const d = member();
  const idD = await memberId(d);
  expect((await produce(6000)).code).toBe(0);
  await waitForGrid(page, { [idA]: 3, [idD]: 3 });
  await waitForTimeline(page, `joined ${idD}`);

  // Throughput: the committed messages of the group show up per member, in the state the page draws.
  const state = (await page.evaluate(() => fetch('/api/state').then((r) => r.json()))) as DashboardState;
  const peak = Math.max(...Object.values(state.throughput.members).flatMap((s) => s.filter((v) => v !== null)));
  expect(peak).toBeGreaterThan(0);
  expect(await page.locator('#chart canvas').count()).toBeGreaterThan(0);
  expect(
    await page
      .locator('#timeline tr[data-generation]')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-generation'))),
  ).toEqual(expect.arrayContaining([expiredC, leftB, joinedC, joinedB].map((e) => String(e.generation))));

  // A burst the members cannot keep up with: the grid colours by lag while they catch up.
  const burst = produce(30_000);
  await page
    .waitForFunction(
      () => Number(document.querySelector('#summary dd[data-field="total lag"]')?.textContent) > 0,
      undefined,
      { timeout: 20_000, polling: 50 },
    )
    // Only for the picture: members that keep up with the burst are no failure.
    .catch(() => undefined);
  mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  expect((await burst).code).toBe(0);
  expect(distinctColours(SCREENSHOT)).toBeGreaterThan(100);
  expect(pageErrors).toEqual([]);
  // Every asset came from the dashboard itself.
  expect(external).toEqual([]);

  dashboard.kill('SIGTERM');
  expect(await dashboard.exited).toEqual({ code: 0, signal: null });
  expect(runtimeWarnings(dashboard.stderrLines.join('\n'))).toEqual([]);
}, 420_000);

it('shows a freeze, a member waited for with the time left and moves held back, and the unfreeze (etcd)', async () => {
  // The record is written here as a leader publishes it while it waits for b (rebalanceDelay) and holds back two
  // moves (maxMovesPerRebalance), so the display is checked without a running group.
  const opsGroup = unique('kiel-dash-ops');
  const backend = new EtcdBackend({ hosts: ETCD });
  await backend.connect();
  const dashboard = new CliProcess([
    'dashboard',
    ...['--group', opsGroup, '--backend', 'etcd', '--etcd', ETCD, '--brokers', BROKERS, '--port', '0'],
  ]);
  processes.push(dashboard);
  try {
    const record = {
      generation: 4,
      leader: 'a',
      strategy: 'naive',
      members: ['a', 'b'],
      partitions: [`${topic}:0`, `${topic}:1`],
      assignment: { a: { [topic]: [0] }, b: { [topic]: [1] } },
      waiting: { b: Date.now() + 120_000 },
      named: ['a', 'b'],
      throttled: 2,
    };
    expect(await backend.writeRecord(opsGroup, 'allocation', JSON.stringify(record), null)).not.toBeNull();
    await waitFor(
      'the dashboard address',
      () => dashboard.stdoutLines.length > 0,
      30_000,
      () => dashboard.stderrLines.join('\n'),
    );
    const page = await browser!.newPage({ viewport: { width: 1400, height: 1000 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(dashboard.stdoutLines[0]!);
    await page.locator('body[data-generation="4"]').waitFor({ timeout: 30_000 });
    expect(await page.locator('#frozen').isHidden()).toBe(true);
    expect(await page.locator('#summary dd[data-field="allocation"]').textContent()).toBe('converging');
    const converging = (await page.locator('#converging').textContent())!;
    expect(converging).toMatch(/waiting for b to come back: its partitions are idle, and move in (\d+\.\d) s/);
    const left = Number(/move in (\d+\.\d) s/.exec(converging)![1]);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(120);
    expect(converging).toContain('converging: 2 moves held back');
    expect(await page.locator('#members tr[data-member="b"] .badge').textContent()).toMatch(/^waiting \d+\.\d s$/);

    // Frozen: the page shows it at once (the dashboard watches the control record), and drops it on the unfreeze.
    await freezeGroup(backend, opsGroup, { reason: 'deploy 9' });
    await page.locator('body[data-frozen="true"]').waitFor({ timeout: 15_000 });
    expect(await page.locator('#frozen').textContent()).toMatch(/^FROZEN since [\d:]+ \(deploy 9\): no new allocation/);
    expect(await page.locator('#summary dd[data-field="allocation"]').textContent()).toBe('FROZEN');
    const state = (await page.evaluate(() => fetch('/api/state').then((r) => r.json()))) as DashboardState;
    expect(state.snapshot!.control).toEqual({ frozen: true, since: expect.any(Number), reason: 'deploy 9' });
    expect(state.health.b).toBe('waiting');
    await unfreezeGroup(backend, opsGroup);
    await page.locator('body[data-frozen="false"]').waitFor({ timeout: 15_000 });
    expect(await page.locator('#frozen').isHidden()).toBe(true);
    expect(pageErrors).toEqual([]);
    await page.close();
  } finally {
    dashboard.kill('SIGTERM');
    await dashboard.exited;
    await backend.close();
  }
}, 120_000);

it('refuses a port in use with a usage error naming it (etcd)', async () => {
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as net.AddressInfo).port;
  try {
    const r = await runCli([
      'dashboard',
      ...['--group', unique('kiel-dash-port'), '--backend', 'etcd', '--etcd', ETCD, '--brokers', BROKERS],
      ...['--port', String(port)],
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: option --port: cannot listen on 127.0.0.1:${port} (EADDRINUSE)`);
    // The group has no allocation yet: the dashboard says it waits for one rather than failing.
    expect(r.stderr).toContain('has no published allocation in etcd');
  } finally {
    taken.close();
  }
});
