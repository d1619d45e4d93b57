import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { log, portAnswers, UnreachableError } from '../../common';

/** Finds the repository's scripts/stack from the built file, however deep it sits. */
function findStackScript(): string | undefined {
  let dir = __dirname;
  for (let i = 0; i < 7; i++) {
    const candidate = path.join(dir, 'scripts', 'stack');
    if (existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  return undefined;
}

/** Starts the local stack through scripts/stack when Kafka or the chosen backend does not answer. */
export async function ensureStack(flags: {
  backend: 'zk' | 'etcd';
  brokers: string[];
  zk: string[];
  etcd: string[];
}): Promise<void> {
  const backendHosts = flags.backend === 'zk' ? flags.zk : flags.etcd;
  const backendName = flags.backend === 'zk' ? 'ZooKeeper' : 'etcd';
  const answering = async () => ({
    kafka: await portAnswers(flags.brokers[0]!),
    backend: await portAnswers(backendHosts[0]!),
  });
  let state = await answering();
  if (state.kafka && state.backend) return;
  const script = findStackScript();
  if (script) {
    log(
      `the local stack is not running: starting it with ${path.relative(process.cwd(), script)} up (the first run downloads Kafka)`,
    );
    spawnSync(process.execPath, [script, 'up'], { stdio: ['ignore', process.stderr, process.stderr] });
    state = await answering();
  }
  if (!state.kafka)
    throw new UnreachableError('Kafka', flags.brokers.join(','), 'not answering, and the local stack did not start it');
  if (!state.backend)
    throw new UnreachableError(
      backendName,
      backendHosts.join(','),
      'not answering, and the local stack did not start it',
    );
}
