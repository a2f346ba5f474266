/**
 * The etcd backend against real members that ask for TLS client certificates, and for a user and
 * password (FACTORY_ETCD_CA / _CERT / _KEY, FACTORY_ETCD_USER / _PASSWORD): a state opens, commits
 * and reads back; a client without the certificate, or with a wrong password, gets an error that
 * names etcd, no stack trace. Certificates are made here with openssl (a throwaway CA).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { StateError } from '../../src/errors.js';
import { EtcdBackend } from '../../src/state/etcd-backend.js';
import { etcdSkipReason, EtcdCluster, type EtcdTestTls } from '../harness/etcd.js';
import { plan, put } from './records.js';

const skip = etcdSkipReason();

/** makeCerts writes a CA and one certificate for 127.0.0.1 (server and client use), signed by it. */
function makeCerts(dir: string): EtcdTestTls {
  const f = (n: string) => path.join(dir, n);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '1', '-subj', '/CN=factory-test-ca');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('node.key'), '-out', f('node.csr'), '-subj', '/CN=factory');
  fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  ssl('x509', '-req', '-in', f('node.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('node.pem'), '-days', '1', '-extfile', f('ext.cnf'));
  return { ca: f('ca.pem'), cert: f('node.pem'), key: f('node.key') };
}

/** withEnv runs fn with these FACTORY_ETCD_* variables set, then puts the environment back. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const before = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) if (v === undefined) delete process.env[k];
  else process.env[k] = v;
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(before)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
}

describe.skipIf(skip !== undefined)(`etcd backend with TLS client certificates and with user auth${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-etcd-tls-'));
  let tls: EtcdTestTls;
  let secure: EtcdCluster | undefined;
  let authed: EtcdCluster | undefined;

  beforeAll(async () => {
    tls = makeCerts(dir);
    secure = await EtcdCluster.start({ members: 1, tls });
    authed = await EtcdCluster.start({ members: 1 });
    const ctl = (...args: string[]) => execFileSync('etcdctl', ['--endpoints', `http://${authed!.members[0]!.endpoint}`, ...args], { stdio: 'pipe', env: { ...process.env, ETCDCTL_API: '3' } });
    ctl('user', 'add', 'root:s3cret');
    ctl('auth', 'enable');
  }, 90_000);
  afterAll(async () => {
    await secure?.stop();
    await authed?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  test('with the CA and a client certificate: a state opens on https, commits and reads back in a new handle', async () => {
    const loc = `etcd://${secure!.members[0]!.endpoint}/tls`;
    await withEnv({ FACTORY_ETCD_CA: tls.ca, FACTORY_ETCD_CERT: tls.cert, FACTORY_ETCD_KEY: tls.key }, async () => {
      const a = await EtcdBackend.open(loc);
      try {
        await put(a, 'web');
      } finally {
        await a.close();
      }
      const b = await EtcdBackend.open(loc);
      try {
        expect(b.view().get('plans', 'web')).toEqual(plan('web'));
      } finally {
        await b.close();
      }
    });
  }, 60_000);

  test('without a client certificate, or without the CA, the open fails naming etcd and its member', async () => {
    const loc = `etcd://${secure!.members[0]!.endpoint}/tls-refused`;
    for (const vars of [{ FACTORY_ETCD_CA: tls.ca, FACTORY_ETCD_CERT: undefined, FACTORY_ETCD_KEY: undefined }, { FACTORY_ETCD_CA: undefined, FACTORY_ETCD_CERT: undefined, FACTORY_ETCD_KEY: undefined }]) {
      const err = await withEnv(vars, () => EtcdBackend.open(loc).then(async (b) => (await b.close(), undefined), (e: unknown) => e));
      expect(err, JSON.stringify(vars)).toBeDefined();
      expect((err as StateError).message).toMatch(/etcd/);
      expect((err as StateError).message).toContain(secure!.members[0]!.endpoint);
      process.stderr.write(`etcd TLS: ${vars.FACTORY_ETCD_CA ? 'no client certificate' : 'no CA'}: ${(err as Error).message}\n`);
    }
  }, 60_000);

  test('with user auth: the right password opens and commits; a wrong one is refused naming etcd', async () => {
    const loc = `etcd://${authed!.members[0]!.endpoint}/authed`;
    await withEnv({ FACTORY_ETCD_USER: 'root', FACTORY_ETCD_PASSWORD: 's3cret' }, async () => {
      const a = await EtcdBackend.open(loc);
      try {
        await put(a, 'db');
        expect(a.view().get('plans', 'db')).toEqual(plan('db'));
      } finally {
        await a.close();
      }
    });
    const err = await withEnv({ FACTORY_ETCD_USER: 'root', FACTORY_ETCD_PASSWORD: 'wrong' }, () => EtcdBackend.open(loc).then(async (b) => (await b.close(), undefined), (e: unknown) => e));
    expect(err).toBeDefined();
    expect((err as StateError).message).toMatch(/etcd/);
    // a StateError of ours (printed as one line with its hint), not the client's own error
    expect((err as StateError).name).toBe('StateError');
    process.stderr.write(`etcd auth: a wrong password: ${(err as Error).message}\n`);
  }, 60_000);
});
