// The end-to-end scenario with real Kafka and the shared ZooKeeper, every member a process of its own: 3
// GroupedConsumers on a 12-partition topic, 30,000 messages produced while they run, a graceful leave, a SIGKILL
// and a join, with the naive, sticky and weighted strategies, and once with mixed handlers (CPU-bound, throwing,
// async) (packages/test-kit/src/end-to-end.ts). The members run the same consumer code as the etcd
// package's run of this scenario (packages/test-kit/programs/member-program.js); only the backend line of the
// fixture differs.
import { describeEndToEnd } from '@kiel/test-kit';
import { endToEndBackend } from './helpers';

describeEndToEnd(endToEndBackend);
