/**
 * Installing only the packages you need: the library packages are packed with `npm pack`, installed into an empty
 * project outside the workspace (their own dependencies come from the registry), and the README's ten-line grouped
 * consumer is type-checked and run there against the stack: once with etcd, once with ZooKeeper swapped in. This
 * proves that each package declares what it needs, that `exports` and types resolve, and that no package reaches
 * into a sibling's source.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { Kafka, logLevel } from 'kafkajs';
import { waitFor } from '@kiel/test-kit';
import { BROKERS, ETCD, unique, ZK } from './helpers';

const ROOT = path.join(__dirname, '..', '..', '..');
const TSC = require.resolve('typescript/bin/tsc');

/**
 * The environment of npm and node children, without the workspace's npm settings leaking in, and without the
 * FORCE_COLOR that Nx sets: with it, console.log colours the numbers the README consumer prints.
 */
const cleanEnv = () =>
  Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_') && k !== 'FORCE_COLOR'),
  );

/** The code block marked `pack-test: grouped-consumer` in the root README. */
function readmeConsumer(): string {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const marker = readme.indexOf('<!-- pack-test: grouped-consumer');
  expect(marker).toBeGreaterThan(-1);
  const match = /```ts\n([\s\S]*?)```/.exec(readme.slice(marker));
  expect(match).not.toBeNull();
  return match![1]!;
}

let work: string;
const tarballs: Record<string, string> = {};

beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'kiel-pack-'));
  for (const pkg of ['protocol', 'allocators', 'consumer', 'allocator-etcd', 'allocator-zk']) {
    const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', work], {
      cwd: path.join(ROOT, 'packages', pkg),
      env: cleanEnv(),
      encoding: 'utf8',
    });
    tarballs[pkg] = path.join(work, out.trim().split('\n').at(-1)!);
  }
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.each([
  ['etcd', 'allocator-etcd'],
  ['ZooKeeper', 'allocator-zk'],
])('the README grouped consumer, installed from tarballs, with %s', (_server, backendPackage) => {
  it('type-checks and consumes from the stack, then leaves on SIGTERM', async () => {
    const project = path.join(work, backendPackage);
    mkdirSync(project);
    writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'kiel-pack-check', private: true }));
    const packages = ['protocol', 'allocators', 'consumer', backendPackage].map((p) => tarballs[p]!);
    // --ignore-scripts: the native dependencies ship prebuilt binaries; compiling zstd-napi from source (its install
    // script) would need a C++ toolchain and most of a CPU minute, and proves nothing about our packages.
    const install = ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'];
    execFileSync('npm', [...install, ...packages, '@types/node@20'], {
      cwd: project,
      env: cleanEnv(),
      stdio: ['ignore', 'ignore', 'inherit'],
    });

    const topic = unique('kiel-pack');
    const group = unique('kiel-pack');
    let code = readmeConsumer()
      .replace("'billing'", `'${group}'`)
      .replace("'orders'", `'${topic}'`)
      .replace("['127.0.0.1:9092']", JSON.stringify(BROKERS.split(',')).replace(/"/g, "'"));
    if (backendPackage === 'allocator-zk') {
      // The swap the README shows: one import and one constructor.
      code = code
        .replace(
          "import { EtcdBackend } from '@kiel/allocator-etcd';",
          "import { ZooKeeperBackend } from '@kiel/allocator-zk';",
        )
        .replace("new EtcdBackend({ hosts: '127.0.0.1:2379' })", `new ZooKeeperBackend({ hosts: '${ZK}' })`);
      expect(code).toContain('new ZooKeeperBackend(');
    } else {
      code = code.replace("'127.0.0.1:2379'", `'${ETCD}'`);
    }
    writeFileSync(path.join(project, 'consumer.ts'), code);
    writeFileSync(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, module: 'node16', target: 'es2022', types: ['node'], skipLibCheck: true },
        files: ['consumer.ts'],
      }),
    );
    // Types resolve through each package's exports map, from the installed tarballs only.
    execFileSync(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: project, stdio: 'inherit' });

    const kafka = new Kafka({ clientId: 'kiel-pack-test', brokers: BROKERS.split(','), logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    const producer = kafka.producer();
    await admin.connect();
    await producer.connect();
    const child = spawn(process.execPath, ['consumer.js'], {
      cwd: project,
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    let stderr = '';
    readline.createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
      await producer.send({ topic, messages: Array.from({ length: 50 }, (_, i) => ({ value: JSON.stringify(i) })) });
      await waitFor(`50 messages from the README consumer (stderr: ${stderr})`, () => lines.length >= 50, 60_000);
      // `console.log(m.partition, m.offset, m.value)`, with the JSON values decoded.
      const values = lines.map((l) => Number(l.split(' ')[2]));
      if (values.some((v) => Number.isNaN(v)))
        throw new Error(`unexpected output: ${JSON.stringify(lines.slice(0, 3))}`);
      expect(new Set(values)).toEqual(new Set(Array.from({ length: 50 }, (_, i) => i)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stderr).toBe('');
    } finally {
      child.kill('SIGKILL');
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await producer.disconnect();
      await admin.disconnect();
    }
  }, 240_000);
});

describe('the kiel app packed with npm pack', () => {
  it('ships the dashboard page, and every asset it loads resolves from the package or its dependencies', () => {
    const app = path.join(ROOT, 'apps', 'example');
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--silent'], {
      cwd: app,
      env: cleanEnv(),
      encoding: 'utf8',
    });
    const files = new Set((JSON.parse(out) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path));
    const html = readFileSync(path.join(app, 'public', 'index.html'), 'utf8');
    const assets = [...html.matchAll(/(?:src|href)="(\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThanOrEqual(4);
    const manifest = JSON.parse(readFileSync(path.join(app, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    for (const asset of assets) {
      if (asset.startsWith('/assets/')) {
        // Served from public/, which must be in the tarball.
        expect(files).toContain(`public/${asset.slice('/assets/'.length)}`);
      } else {
        // The chart library comes from uPlot's own package, a runtime dependency (not a dev one, not a CDN).
        expect(asset).toMatch(/^\/vendor\/uplot\/uPlot\.(iife\.min\.js|min\.css)$/);
        expect(manifest.dependencies).toHaveProperty('uplot');
        expect(() => require.resolve(`uplot/dist/${path.basename(asset)}`)).not.toThrow();
      }
    }
    expect(files).toContain('dist/dashboard/server.js');
    for (const dep of ['fastify', '@fastify/static', 'uplot']) expect(manifest.dependencies).toHaveProperty(dep);
  });
});
