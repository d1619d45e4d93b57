// Digest authentication and ACLs on the shared ZooKeeper: the group's nodes carry the ACL the backend is given,
// and a client without the credentials can change none of them.
import * as zookeeper from 'node-zookeeper-client';
import { digestAclId } from '../src';
import { Backends, closeRaw, memberInfo, randomRoot, rawClient, removeTree } from './helpers';

const CREDENTIALS = 'kiel-app:s3cret';

describe('ZooKeeperBackend with digest auth and ACLs', () => {
  let root: string;
  let backends: Backends;

  beforeEach(() => {
    root = randomRoot();
    backends = new Backends({ rootPath: root, sessionTimeout: 4000, operationTimeout: 3000 });
  });

  afterEach(async () => {
    await backends.closeAll();
    await removeTree(root, undefined, CREDENTIALS);
  });

  it('by default only the authenticated creator can read or change the group', async () => {
    const owner = await backends.open({ auth: CREDENTIALS });
    await owner.join('g', memberInfo('owner'));
    const version = await owner.writeRecord('g', 'allocation', '{"generation":1}', null);
    expect(await owner.claim('g', 't:0', 'owner')).toBe(true);

    const raw = await rawClient();
    // Reading an ACL needs READ or ADMIN on the node, too.
    raw.addAuthInfo('digest', Buffer.from(CREDENTIALS));
    try {
      const acl = await new Promise<zookeeper.ACL[]>((resolve, reject) =>
        raw.getACL(`${root}/groups/g/allocation`, (err, a) => (err ? reject(err) : resolve(a))),
      );
      // The digest id is the server's own computation, an independent check of digestAclId. (The client names the
      // permission field `permission`, not `perms` as its type definitions say.)
      expect(acl.map((a) => [a.id.scheme, a.id.id, (a as unknown as { permission: number }).permission])).toEqual([
        ['digest', digestAclId(CREDENTIALS), zookeeper.Permission.ALL],
      ]);
    } finally {
      await closeRaw(raw);
    }

    for (const options of [{}, { auth: 'kiel-app:wrong' }]) {
      const stranger = await backends.open(options);
      const denied = { code: 'ERR_BACKEND_AUTH', retriable: false };
      await expect(stranger.writeRecord('g', 'allocation', '{"generation":666}', version)).rejects.toMatchObject(
        denied,
      );
      await expect(stranger.writeRecord('g', 'partitions', '[]', null)).rejects.toMatchObject(denied);
      await expect(stranger.join('g', memberInfo('stranger'))).rejects.toMatchObject(denied);
      await expect(stranger.claim('g', 't:1', 'stranger')).rejects.toMatchObject(denied);
      await expect(stranger.readRecord('g', 'allocation')).rejects.toMatchObject(denied);
    }
    expect(await owner.readRecord('g', 'allocation')).toMatchObject({ value: '{"generation":1}', version });
    expect((await owner.members('g')).map((m) => m.info.id)).toEqual(['owner']);
  });

  it('an explicit ACL can let anyone read while only the credentials write', async () => {
    const acl = [
      { scheme: 'digest', id: digestAclId(CREDENTIALS), permissions: 'all' as const },
      { scheme: 'world', id: 'anyone', permissions: ['read' as const] },
    ];
    const owner = await backends.open({ auth: CREDENTIALS, acl });
    const version = await owner.writeRecord('g', 'allocation', 'mine', null);
    const reader = await backends.open();
    expect(await reader.readRecord('g', 'allocation')).toMatchObject({ value: 'mine', version });
    await expect(reader.writeRecord('g', 'allocation', 'theirs', version)).rejects.toMatchObject({
      code: 'ERR_BACKEND_AUTH',
    });
    // A second process with the same credentials is a full member of the group.
    const peer = await backends.open({ auth: CREDENTIALS });
    expect(await peer.writeRecord('g', 'allocation', 'peer', version)).not.toBeNull();
  });
});
