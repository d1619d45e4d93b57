export { Reader } from './reader';
export type { TaggedFieldReader } from './reader';
export { Writer } from './writer';
export type { TaggedField } from './writer';
