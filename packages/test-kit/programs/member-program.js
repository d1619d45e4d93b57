// The consumer code of a group member running in a process of its own, shared by the ZooKeeper and etcd packages'
// multi-process tests: their fixtures differ only in the line that makes the backend. The consumer is the built
// @kiel/consumer (dist), as an application runs it.
//
// The fixture passes one JSON argument (see ChildMemberConfig in child-member.ts):
//   { brokers: string[], group, topic, strategy? (a name, or 'newcomer': see newcomerTakesAll), weight?, handler?, mode?, handleMs?, holdAt?, offsetReset?,
//     metadataMaxAge?, hosts, namespace, sessionTimeout }
// (`namespace` and `sessionTimeout`, ms, are for the backend line). A fixture uses it as
//   require('@kiel/test-kit/register-ts'); // to load the backend from its package's .ts sources
//   const { runMember } = require('@kiel/test-kit/member-program');
//   runMember((c) => new ZooKeeperBackend({ hosts: c.hosts, rootPath: c.namespace, sessionTimeout: c.sessionTimeout })); The handler kinds:
//   async   awaits a random 0..handleMs ms (per batch, or per message with mode eachMessage)
//   cpu     a synchronous busy loop of handleMs ms per message, which holds the event loop
//   throws  as async, but throws on the first attempt at each offset divisible by 97; the member then calls run()
//           again, as an application would
// It reports one line per fact on stdout, written synchronously (stdout is a pipe), so nothing reported is lost when
// the process is killed:
//   READY <member id>                                            connected and registered
//   ASSIGNED <generation> <comma-separated topic:partition> <wall-clock ms>   after each generation applied
//   HANDLED <partition> <start> <end> <comma-separated offsets>   per batch (eachBatch) or per message (eachMessage),
//                                                                wall-clock ms around the handler's work
//   THREW <partition> <offset>                                   the throws handler failed at this offset (not
//                                                                handled; it must come again)
//   HOLDING <partition> <offset>                                 the handler is held at this message (holdAt)
//   EVENT <event> <wall-clock ms>                                the consumer's fenced, unfenced, lost, rejoined
//   COMMITTED <partition> <offset> <wall-clock ms>               per committed partition (the next offset to read)
//   LEFT                                                         after a graceful close on SIGTERM (then exit 0), or
//                                                                close({ restarting: true }) on SIGUSR2
//   HANGING <partition> <offset>                                 (hangOnValue) the handler hangs for good at a message
//                                                                whose value is HANG
//   EXITING <partition> <offset>                                 (exitOnValue) the process exits (code 3) at a message
//                                                                whose value is EXIT, every time it is handled
//   STALLED <partition> <offset> <stalledMs>                     the consumer's stalled event (stallTimeout)
//   POISON <partition> <offset> <attempts>                       poison.onPoison was called (poison: { maxAttempts })
// Issue 19's stall and poison options pass through: stallTimeout, stallAction, poison ({ maxAttempts }).
// Issue 19's options pass through: instanceId, rebalanceDelay, maxMovesPerRebalance. With `count` (n > 1) the process
// runs n members, each with a backend of its own and instanceId `<instanceId>-<i>` if one is given, and prefixes each
// line with `M <i> `. With `command: 'freeze' | 'unfreeze'` it freezes or unfreezes the group, prints
// `FROZEN <true|false>` and exits. With `holdStart: true` it loads everything, prints `LOADED` and starts only on
// SIGUSR1: a restart then costs what kiel does, not what loading Node modules costs on a starved machine.
'use strict';

const { GroupedConsumer, freezeGroup, unfreezeGroup } = require('@kiel/consumer');
const { parsePartitionId } = require('@kiel/allocators');

const wallClock = () => performance.timeOrigin + performance.now();
const print = (line) => process.stdout.write(`${line}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Holds the event loop for `ms`: what a CPU-bound handler does. */
function busy(ms) {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/** The error the throws handler injects: run() rejects with it and the member runs again. */
class InjectedFailure extends Error {}

/** The run() handlers for `config`: the handler kind in the mode asked for, reporting what it handled. */
function handlers(config, say) {
  const kind = config.handler ?? 'async';
  const handleMs = config.handleMs ?? 0;
  const thrown = new Set();
  const hold = config.holdAt;
  const held = new Set();
  // The throws handler fails once at each offset divisible by 97.
  const failsAt = (partition, offset) => {
    if (kind !== 'throws' || offset % 97 !== 0 || thrown.has(`${partition}:${offset}`)) return false;
    thrown.add(`${partition}:${offset}`);
    return true;
  };
  // A message the test holds the handler on (once): its partition stays busy for `hold.ms`.
  const holdFor = (partition, offset) => {
    if (!hold || hold.partition !== partition || offset < hold.offset || held.has(partition)) return 0;
    held.add(partition);
    return hold.ms;
  };

  // A message whose value is HANG hangs the handler for good (hangOnValue); one whose value is EXIT ends the process
  // every time it is handled (exitOnValue). Checked before the handler's work, per message.
  const trap = (m) => {
    const text = m.value === null ? '' : m.value.toString();
    if (config.exitOnValue && text === 'EXIT') {
      say(`EXITING ${m.partition} ${m.offset}`);
      process.exit(3);
    }
    if (config.hangOnValue && text === 'HANG') {
      say(`HANGING ${m.partition} ${m.offset}`);
      return new Promise(() => {});
    }
    return undefined;
  };

  if (config.mode === 'eachMessage') {
    if (kind === 'cpu') {
      // Synchronous: returns no promise, and never yields.
      return {
        eachMessage: (m) => {
          const start = wallClock();
          busy(handleMs);
          say(`HANDLED ${m.partition} ${start} ${wallClock()} ${m.offset}`);
        },
      };
    }
    return {
      eachMessage: async (m) => {
        const start = wallClock();
        const trapped = trap(m);
        if (trapped) await trapped;
        if (failsAt(m.partition, m.offset)) {
          say(`THREW ${m.partition} ${m.offset}`);
          throw new InjectedFailure(`injected failure at ${m.partition}:${m.offset}`);
        }
        const holdMs = holdFor(m.partition, m.offset);
        if (holdMs) {
          say(`HOLDING ${m.partition} ${m.offset}`);
          await sleep(holdMs);
        }
        if (handleMs) await sleep(Math.random() * handleMs);
        say(`HANDLED ${m.partition} ${start} ${wallClock()} ${m.offset}`);
      },
    };
  }
  return {
    eachBatch: async (batch) => {
      const start = wallClock();
      for (const m of batch.messages) {
        const trapped = trap(m);
        if (trapped) await trapped;
      }
      for (const m of batch.messages) {
        if (failsAt(batch.partition, m.offset)) {
          // Before any work: the whole batch comes again.
          say(`THREW ${batch.partition} ${m.offset}`);
          throw new InjectedFailure(`injected failure at ${batch.partition}:${m.offset}`);
        }
      }
      const holdMs = holdFor(batch.partition, batch.lastOffset);
      if (holdMs) {
        say(`HOLDING ${batch.partition} ${batch.firstOffset}`);
        await sleep(holdMs);
      }
      if (kind === 'cpu') busy(handleMs * batch.messages.length);
      // A handler that takes a moment, so that two owners at once would show as overlapping intervals.
      else if (handleMs) await sleep(Math.random() * handleMs);
      say(`HANDLED ${batch.partition} ${start} ${wallClock()} ${batch.messages.map((m) => m.offset).join(',')}`);
    },
  };
}

/**
 * A strategy for tests that need a handoff whatever the (random) member ids: a member the previous assignment does
 * not name takes every partition (the lowest id of them, if several); with no newcomer the previous owners keep theirs.
 * Deterministic for the same input, as every strategy must be.
 */
function newcomerTakesAll(members, partitions, context) {
  const previous = context?.previous ?? {};
  const sorted = [...members].sort();
  const newcomer = Object.keys(previous).length === 0 ? sorted[0] : sorted.find((m) => !(m in previous));
  const owner = newcomer ?? sorted.find((m) => m in previous) ?? sorted[0];
  const assignment = {};
  if (owner === undefined) return assignment;
  for (const p of partitions) {
    const { topic, partition } = typeof p === 'string' ? parsePartitionId(p) : p;
    ((assignment[owner] ??= {})[topic] ??= []).push(partition);
  }
  for (const topics of Object.values(assignment)) for (const list of Object.values(topics)) list.sort((x, y) => x - y);
  return assignment;
}

/** Reads the JSON argument, makes the backend with `makeBackend(config)` and runs the member until SIGTERM. */
function runMember(makeBackend, config = JSON.parse(process.argv[2])) {
  if (config.command === 'freeze' || config.command === 'unfreeze') {
    const backend = makeBackend(config);
    const act =
      config.command === 'freeze'
        ? freezeGroup(backend, config.group, { reason: 'test' })
        : unfreezeGroup(backend, config.group);
    act
      .then((state) => {
        print(`FROZEN ${state.frozen}`);
        return backend.close();
      })
      .then(
        () => process.exit(0),
        (error) => {
          process.stderr.write(`${error.stack}\n`);
          process.exit(1);
        },
      );
    return;
  }
  if (config.holdStart === true) {
    // A signal listener does not keep the process alive: this timer does, until the start.
    const hold = setInterval(() => undefined, 60_000);
    process.once('SIGUSR1', () => {
      clearInterval(hold);
      runMember(makeBackend, { ...config, holdStart: false });
    });
    print('LOADED');
    return;
  }
  const count = config.count ?? 1;
  const members = [];
  for (let i = 0; i < count; i++) {
    const say = count === 1 ? print : (line) => print(`M ${i} ${line}`);
    const instanceId = config.instanceId !== undefined && count > 1 ? `${config.instanceId}-${i}` : config.instanceId;
    members.push(startMember({ ...config, instanceId }, makeBackend, say));
  }
  let closing = false;
  const fail = (error) => {
    process.stderr.write(`${error.stack}\n`);
    process.exit(1);
  };
  const closeAll = (options) => {
    if (closing) return;
    closing = true;
    Promise.all(members.map((close) => close(options))).then(() => process.exit(0), fail);
  };
  process.once('SIGTERM', () => closeAll({}));
  process.once('SIGUSR2', () => closeAll({ restarting: true }));
}

/** One member: a GroupedConsumer reporting through `say`; returns its close. */
function startMember(config, makeBackend, say) {
  const consumer = new GroupedConsumer({
    brokers: config.brokers,
    group: config.group,
    topics: [config.topic],
    backend: makeBackend(config),
    strategy: config.strategy === 'newcomer' ? newcomerTakesAll : (config.strategy ?? 'sticky'),
    ...(config.weight !== undefined ? { weight: config.weight } : {}),
    ...(config.offsetReset !== undefined ? { offsetReset: config.offsetReset } : {}),
    ...(config.instanceId !== undefined ? { instanceId: config.instanceId } : {}),
    ...(config.rebalanceDelay !== undefined ? { rebalanceDelay: config.rebalanceDelay } : {}),
    ...(config.maxMovesPerRebalance !== undefined ? { maxMovesPerRebalance: config.maxMovesPerRebalance } : {}),
    ...(config.metadataMaxAge !== undefined ? { metadataMaxAge: config.metadataMaxAge } : {}),
    ...(config.stallTimeout !== undefined ? { stallTimeout: config.stallTimeout } : {}),
    ...(config.stallAction !== undefined ? { stallAction: config.stallAction } : {}),
    ...(config.poison !== undefined
      ? {
          poison: {
            maxAttempts: config.poison.maxAttempts,
            onPoison: (m, attempts) => say(`POISON ${m.partition} ${m.offset} ${attempts}`),
          },
        }
      : {}),
    deserializer: 'raw',
    maxWaitTime: 100,
  });
  // Once per generation applied (also when this member's partitions stay the same), and after a close's hand-back.
  consumer.on('rebalance', ({ generation }) =>
    say(`ASSIGNED ${generation} ${consumer.assignment.join(',')} ${wallClock()}`),
  );
  consumer.on('commit', ({ offsets }) => {
    const at = wallClock();
    for (const o of offsets) say(`COMMITTED ${o.partition} ${o.offset} ${at}`);
  });
  for (const event of ['fenced', 'unfenced', 'lost', 'rejoined']) {
    consumer.on(event, () => say(`EVENT ${event} ${wallClock()}`));
  }
  consumer.on('stalled', ({ partition, offset, stalledMs }) =>
    say(`STALLED ${partition} ${offset} ${Math.round(stalledMs)}`),
  );
  consumer.on('error', (error) => process.stderr.write(`${error.code} ${error.message}\n`));
  const fail = (error) => {
    process.stderr.write(`${error.stack}\n`);
    process.exit(1);
  };
  let closing = false;
  const run = handlers(config, say);
  // An application's loop: a handler failure stops run(); the message comes again when it runs again.
  const runAgain = () =>
    consumer.run(run).catch((error) => {
      if (error instanceof InjectedFailure && !closing) return runAgain();
      if (error instanceof InjectedFailure) return undefined;
      throw error;
    });
  // Many members in one process start together on a loaded machine: a retriable failure to connect is tried again,
  // as an application would.
  const connect = (attempt) =>
    consumer.connect().catch(async (error) => {
      if ((config.count ?? 1) === 1 || attempt >= 10 || !error.retriable) throw error;
      process.stderr.write(`connect failed (${error.code}), retrying: ${error.message}\n`);
      await sleep(2_000);
      return connect(attempt + 1);
    });
  connect(1)
    .then(() => {
      say(`READY ${consumer.memberId}`);
      return runAgain();
    })
    .catch(fail);
  return async (options) => {
    closing = true;
    await consumer.close(options);
    say('LEFT');
  };
}

module.exports = { runMember };
