// What a membership watch costs ZooKeeper as a group grows: each delivery reads only the member entries it has not
// seen before, so a group of N members joining one by one costs each watcher about N reads, not N² / 2.
import type { Member } from '@kiel/consumer';
import { ZkConnection } from '../src/zk';
import { waitFor } from '@kiel/test-kit';
import { Backends, memberInfo, randomRoot, removeTree, rawClient, zkCall, closeRaw } from './helpers';

describe('ZooKeeperBackend watchMembers at scale', () => {
  let root: string;
  let backends: Backends;

  beforeEach(() => {
    root = randomRoot();
    backends = new Backends({ rootPath: root, sessionTimeout: 4000, operationTimeout: 3000, connectTimeout: 5000 });
  });

  afterEach(async () => {
    jest.restoreAllMocks();
    await backends.closeAll();
    await removeTree(root);
  });

  it('reads each member entry once, however many times the list changes', async () => {
    const group = 'grows';
    const dir = `${root}/groups/${group}/members/`;
    const observer = backends.create();
    await observer.connect();
    const reads: string[] = [];
    const getData = ZkConnection.prototype.getData;
    jest.spyOn(ZkConnection.prototype, 'getData').mockImplementation(function (this: ZkConnection, path, ...rest) {
      // The observer's reads only: each joining member also lists the entries once, to find its own on a retry.
      if (path.startsWith(dir) && this === (observer as unknown as { connection: ZkConnection }).connection) {
        reads.push(path);
      }
      return getData.call(this, path, ...rest);
    });
    let seen: readonly Member[] = [];
    let deliveries = 0;
    observer.watchMembers(group, (members) => {
      seen = members;
      deliveries++;
    });
    const count = 16;
    const joined: string[] = [];
    const sessions = [];
    for (let i = 0; i < count; i++) {
      const member = backends.create();
      sessions.push(member);
      await member.connect();
      await member.join(group, memberInfo(`m${i}`));
      joined.push(`m${i}`);
      // One delivery per join: without the cache each would read every entry again.
      await waitFor(`the watcher to see m${i}`, () => seen.length === joined.length, 5_000);
    }
    expect(seen.map((m) => m.info.id)).toEqual(joined);
    expect(deliveries).toBeGreaterThanOrEqual(count);
    // Each entry read once (a delivery that raced a join may read a new one twice), far below 16 × 17 / 2 = 136.
    expect(reads.length).toBeGreaterThanOrEqual(count);
    expect(reads.length).toBeLessThanOrEqual(count + 4);
    // A member leaving costs no read at all, and the list is still right.
    await Promise.all(sessions.map((member) => member.close()));
    const before = reads.length;
    const again = backends.create();
    await again.connect();
    await again.join(group, memberInfo('late'));
    await waitFor(
      'the watcher to see the late member alone',
      () => seen.length === 1 && seen[0]!.info.id === 'late',
      5_000,
    );
    expect(reads.length - before).toBeLessThanOrEqual(2);
  });

  it('reads the entries again once the members directory was deleted and created again', async () => {
    const group = 'recreated';
    const observer = backends.create();
    await observer.connect();
    let seen: readonly Member[] = [];
    observer.watchMembers(group, (members) => (seen = members));
    const first = backends.create();
    await first.connect();
    await first.join(group, memberInfo('first'));
    await waitFor('the first member', () => seen.length === 1 && seen[0]!.info.id === 'first', 5_000);
    await first.close();
    await waitFor('no member', () => seen.length === 0, 5_000);
    // The directory goes (an operator's cleanup), and the sequence numbers start again: the same entry name now
    // holds another member.
    const raw = await rawClient();
    try {
      await zkCall<void>((cb) => raw.remove(`${root}/groups/${group}/members`, -1, (err) => cb(err, undefined)));
    } finally {
      await closeRaw(raw);
    }
    const second = backends.create();
    await second.connect();
    await second.join(group, memberInfo('second'));
    await waitFor(
      'the second member under the same entry name',
      () => seen.length === 1 && seen[0]!.info.id === 'second',
      5_000,
    );
  });
});
