/** The shared StateBackend suite against the etcd backend: one member on loopback, a fresh prefix per test. */
import { afterAll, beforeAll } from 'vitest';
import { etcdSkipReason, EtcdCluster } from '../harness/etcd.js';
import { describeBackendContract } from './backend-contract.js';

const skip = etcdSkipReason();
let cluster: EtcdCluster | undefined;
let n = 0;

beforeAll(async () => {
  if (!skip) cluster = await EtcdCluster.start({ members: 1 });
});
afterAll(async () => {
  await cluster?.stop();
});

describeBackendContract('etcd', () => ({
  skip,
  location: () => cluster!.url(`contract/t${++n}`),
}));
