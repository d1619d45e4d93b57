// Option validation: every bad option is a typed ERR_INVALID_CONFIG naming the option, thrown by the constructor.
import { digestAclId, ZooKeeperBackend, type ZooKeeperBackendOptions } from '../src';

function configError(options: unknown): { code: string; retriable: boolean; message: string } {
  try {
    new ZooKeeperBackend(options as ZooKeeperBackendOptions);
  } catch (error) {
    return error as { code: string; retriable: boolean; message: string };
  }
  throw new Error('the constructor accepted the options');
}

describe('ZooKeeperBackend options', () => {
  it.each([
    [{ hosts: '' }, /hosts: the host list is empty/],
    [{ hosts: [] }, /hosts: the host list is empty/],
    [{ hosts: 42 }, /invalid option hosts:/],
    [{ hosts: '127.0.0.1:2181,' }, /hosts\[1\]: empty host/],
    [{ hosts: ['zk1:2181', 'zk 2:2181'] }, /hosts\[1\].*not a host name/],
    [{ hosts: 'zk1:99999' }, /hosts\[0\].*no valid port/],
    [{ hosts: 'zk1:' }, /hosts\[0\].*no valid port/],
    [{ hosts: 'zk1:21a81' }, /hosts\[0\].*no valid port/],
    [{ hosts: 'zk1:2181/chroot' }, /hosts\[0\].*rootPath/],
    [{ hosts: '[::1]:2181' }, /hosts\[0\].*IPv6/],
    [{ hosts: 'zk1', sessionTimeout: 0 }, /sessionTimeout/],
    [{ hosts: 'zk1', sessionTimeout: 1.5 }, /sessionTimeout/],
    [{ hosts: 'zk1', sessionTimeout: Number.NaN }, /sessionTimeout/],
    [{ hosts: 'zk1', connectTimeout: -1 }, /connectTimeout/],
    [{ hosts: 'zk1', operationTimeout: 2 ** 31 }, /operationTimeout/],
    [{ hosts: 'zk1', rootPath: 'kiel' }, /rootPath/],
    [{ hosts: 'zk1', rootPath: '/kiel/' }, /rootPath/],
    [{ hosts: 'zk1', rootPath: '/a//b' }, /rootPath/],
    [{ hosts: 'zk1', rootPath: '/a/../b' }, /rootPath/],
    [{ hosts: 'zk1', rootPath: '/zookeeper/kiel' }, /rootPath.*reserved/],
    [{ hosts: 'zk1', auth: 'no-colon' }, /auth/],
    [{ hosts: 'zk1', auth: ':password' }, /auth/],
    [{ hosts: 'zk1', acl: [] }, /acl/],
    [{ hosts: 'zk1', acl: [{ scheme: 'world', id: 'anyone', permissions: ['fly'] }] }, /acl\[0\].*permissions/],
    [{ hosts: 'zk1', acl: [{ scheme: 'auth', id: '', permissions: 'all' }] }, /acl\[0\].*auth option/],
  ])('rejects %j', (options, message) => {
    const error = configError(options);
    expect(error.code).toBe('ERR_INVALID_CONFIG');
    expect(error.retriable).toBe(false);
    expect(error.message).toMatch(message);
  });

  it('accepts the ensemble as a string or an array, with the default port and kiel’s default root', () => {
    const backend = new ZooKeeperBackend({ hosts: [' zk1 ', 'zk2:2182', '10.0.0.3:2183'] });
    expect(backend.rootPath).toBe('/kiel');
    expect(backend.sessionTimeout).toBe(10_000);
    expect(backend.state).toBe('idle');
    expect(
      new ZooKeeperBackend({ hosts: 'zk1:2181,zk2', rootPath: '/apps/kiel', sessionTimeout: 3000 }).sessionTimeout,
    ).toBe(3000);
  });

  it('computes the digest ACL id as ZooKeeper does', () => {
    // The value ZooKeeper's administrator guide gives for super:test (DigestAuthenticationProvider.generateDigest).
    expect(digestAclId('super:test')).toBe('super:D/InIHSb7yEEbrWz8b9l71RjZJU=');
  });
});
