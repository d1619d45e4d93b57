export type {
  AllocatorBackend,
  AllocatorBackendEvents,
  BackendError,
  BackendErrorCode,
  BackendState,
  BackendSupports,
  Claim,
  ClaimListener,
  Member,
  MemberInfo,
  MembersListener,
  RecordListener,
  RecordName,
  RecordVersion,
  Unsubscribe,
  VersionedRecord,
} from './backend/types';
export { BackendErrorImpl, isBackendError } from './backend/errors';
export type { BackendErrorOptions } from './backend/errors';
export { MemoryBackend, MemoryStore } from './backend/memory';
export type {
  DropWatchEventsOptions,
  MemoryBackendOptions,
  MemoryStoreOptions,
  MemoryWatchKind,
} from './backend/memory';
