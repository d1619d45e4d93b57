export { EtcdBackend } from './etcd-backend';
export { EtcdBackendError } from './errors';
export type { EtcdBackendErrorOptions } from './errors';
export { ETCD_BACKEND_DEFAULTS } from './options';
export type { EtcdAuthOptions, EtcdBackendOptions, EtcdTlsOptions } from './options';
