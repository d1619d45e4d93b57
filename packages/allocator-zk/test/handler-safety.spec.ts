// Safety under real handlers (issue 13) with real Kafka and the shared ZooKeeper, every member a process of its own:
// a CPU-bound handler that holds the event loop while a member joins, a member stopped with SIGSTOP past its session,
// and an offsetReset 'latest' partition moving while its messages wait in the old owner's buffer
// (packages/test-kit/src/handler-safety.ts). The etcd package runs the same cases.
import { describeHandlerSafety } from '@kiel/test-kit';
import { endToEndBackend } from './helpers';

describeHandlerSafety(endToEndBackend);
