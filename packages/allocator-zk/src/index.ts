export { ZooKeeperBackend } from './backend';
export { ZooKeeperBackendError, type ZooKeeperBackendErrorOptions } from './errors';
export { digestAclId, type ZooKeeperAclEntry, type ZooKeeperBackendOptions, type ZooKeeperPermission } from './options';
