import * as path from 'node:path';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance } from 'fastify';
import type { DashboardState, GroupMonitor } from './monitor';

/** The page's own files (HTML, script, style), shipped in the package beside `dist/`. */
export const PUBLIC_DIR = path.join(__dirname, '..', '..', 'public');

/** uPlot's browser build, served from the installed package (no CDN, no copy in our tree). */
function uplotDir(): string {
  return path.dirname(require.resolve('uplot'));
}

/**
 * The dashboard's HTTP server (Fastify):
 * - `GET /` the page, `GET /assets/*` its script and style, `GET /vendor/uplot/*` the chart library;
 * - `GET /api/state` the current state as JSON (for scripts, and the page's first paint);
 * - `GET /events` server-sent events: one `state` event now and one after every change.
 */
export async function dashboardServer(monitor: GroupMonitor): Promise<FastifyInstance> {
  // Open event streams would keep close() waiting: end them with the server.
  const app = Fastify({ logger: false, forceCloseConnections: true });
  await app.register(fastifyStatic, { root: PUBLIC_DIR, prefix: '/assets/', index: false });
  await app.register(fastifyStatic, {
    root: uplotDir(),
    prefix: '/vendor/uplot/',
    decorateReply: false,
    allowedPath: (pathname) => /^\/?uPlot\.(iife\.min\.js|min\.css)$/.test(pathname),
  });
  app.get('/', (_request, reply) => reply.header('cache-control', 'no-store').sendFile('index.html', PUBLIC_DIR));
  app.get('/api/state', () => monitor.latest);
  app.get('/events', (request, reply) => {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const send = (state: DashboardState) => raw.write(`event: state\ndata: ${JSON.stringify(state)}\n\n`);
    // A comment line now and then keeps proxies from closing an idle stream.
    const keepAlive = setInterval(() => raw.write(': keep-alive\n\n'), 15_000);
    monitor.on('state', send);
    send(monitor.latest);
    request.raw.once('close', () => {
      clearInterval(keepAlive);
      monitor.off('state', send);
    });
  });
  return app;
}
