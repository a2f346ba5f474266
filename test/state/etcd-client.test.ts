/** The etcd backend's pure parts: the location, the key layout, the options from FACTORY_ETCD_*, and error messages. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { EtcdKeys, etcdClientOptions, etcdError, etcdSettingsFromEnv, formatEtcdLocation, parseEtcdLocation, prefixEnd } from '../../src/state/etcd-client.js';

describe('etcd location', () => {
  test('hosts with or without ports, several, IPv6; the prefix (default /factory)', () => {
    expect(parseEtcdLocation('etcd://10.0.0.1:2379,10.0.0.2,[::1]:23790/factory/prod/')).toEqual({ endpoints: ['10.0.0.1:2379', '10.0.0.2:2379', '[::1]:23790'], prefix: '/factory/prod' });
    expect(parseEtcdLocation('etcd://db')).toEqual({ endpoints: ['db:2379'], prefix: '/factory' });
    expect(parseEtcdLocation('ETCD://db:1//x')).toEqual({ endpoints: ['db:1'], prefix: '/x' });
    expect(formatEtcdLocation(parseEtcdLocation('etcd://a:1,b:2/p'))).toBe('etcd://a:1,b:2/p');
  });

  test('a bad location says what shape it wants', () => {
    for (const bad of ['etcd:///x', 'etcd://a:99999/x', 'etcd://a b/x', 'etcd://a/x y', 'etcd://a:1,,:2/x']) {
      expect(() => parseEtcdLocation(bad)).toThrow(expect.objectContaining({ code: 'E_STATE_BACKEND', hint: expect.stringMatching(/etcd:\/\/HOST:PORT\[,HOST:PORT…\]\/PREFIX/) }));
    }
  });
});

describe('etcd keys', () => {
  const k = new EtcdKeys('/f');
  test('a key per record and per event (revisions sort as keys), meta and lock', () => {
    expect(k.record('tasks', 'web/g/0').toString()).toBe('/f/tasks/web/g/0');
    expect(k.event(42).toString()).toBe('/f/events/000000000042');
    expect(k.event(9).compare(k.event(10))).toBeLessThan(0);
    expect(k.parse('/f/tasks/web/g/0')).toEqual({ kind: 'record', table: 'tasks', key: 'web/g/0' });
    expect(k.parse(k.event(42))).toEqual({ kind: 'event', rev: 42 });
    expect(k.parse('/f/meta/id')).toEqual({ kind: 'id' });
    expect(k.parse('/f/meta/rev')).toEqual({ kind: 'counter' });
    expect(k.parse('/f/lock')).toEqual({ kind: 'lock' });
    for (const other of ['/f/nope/x', '/f/tasks/', '/g/tasks/x', '/f/events/abc', '/f']) expect(k.parse(other)).toBeUndefined();
  });

  test('prefixEnd is the first key after the prefix', () => {
    expect(prefixEnd(Buffer.from('/f/')).toString()).toBe('/f0');
    expect(prefixEnd(Buffer.from([0x61, 0xff]))).toEqual(Buffer.from([0x62]));
    expect(k.allEnd.toString()).toBe('/f0');
  });
});

describe('etcd options', () => {
  const loc = parseEtcdLocation('etcd://a:1,b:2/p');
  const settings = etcdSettingsFromEnv({});

  test('defaults: 2 s per call, a 5 s lock lease, 1.5 MiB per request', () => {
    expect(settings).toMatchObject({ timeoutMs: 2000, lockTtl: 5, maxRequestBytes: 1.5 * 1024 * 1024 });
    expect(etcdSettingsFromEnv({ FACTORY_ETCD_TIMEOUT: '0.5', FACTORY_ETCD_LOCK_TTL: '10', FACTORY_ETCD_MAX_REQUEST_BYTES: 'x' })).toMatchObject({ timeoutMs: 500, lockTtl: 10, maxRequestBytes: 1.5 * 1024 * 1024 });
  });

  test('TLS from FACTORY_ETCD_CA/CERT/KEY, auth from FACTORY_ETCD_USER/PASSWORD; half a pair is refused', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'factory-etcd-tls-'));
    try {
      for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(path.join(dir, f), `-----${f}-----\n`);
      const plain = await etcdClientOptions(loc, settings, {});
      expect(plain.hosts).toEqual(['http://a:1', 'http://b:2']);
      expect(plain.credentials).toBeUndefined();
      const tls = await etcdClientOptions(loc, settings, {
        FACTORY_ETCD_CA: path.join(dir, 'ca.pem'),
        FACTORY_ETCD_CERT: path.join(dir, 'cert.pem'),
        FACTORY_ETCD_KEY: path.join(dir, 'key.pem'),
        FACTORY_ETCD_USER: 'factory',
        FACTORY_ETCD_PASSWORD: 'secret',
      });
      expect(tls.hosts).toEqual(['https://a:1', 'https://b:2']);
      expect(tls.credentials?.rootCertificate.toString()).toBe('-----ca.pem-----\n');
      expect(tls.credentials?.privateKey?.toString()).toBe('-----key.pem-----\n');
      expect(tls.auth).toMatchObject({ username: 'factory', password: 'secret' });
      await expect(etcdClientOptions(loc, settings, { FACTORY_ETCD_CA: path.join(dir, 'ca.pem'), FACTORY_ETCD_CERT: path.join(dir, 'cert.pem') })).rejects.toThrow(/go together/);
      await expect(etcdClientOptions(loc, settings, { FACTORY_ETCD_CA: path.join(dir, 'none.pem') })).rejects.toThrow(/cannot read FACTORY_ETCD_CA/);
      await expect(etcdClientOptions(loc, settings, { FACTORY_ETCD_USER: 'u' })).rejects.toThrow(/needs FACTORY_ETCD_PASSWORD/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('errors name etcd and its members, and say whether the change may have happened', () => {
    class GRPCDeadlineExceededError extends Error {}
    const e = etcdError(new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded'), 'the commit', loc, { unknownOutcome: true });
    expect(e).toMatchObject({ code: 'E_STATE_UNAVAILABLE', message: 'etcd did not answer the commit (members a:1, b:2): 4 DEADLINE_EXCEEDED: Deadline exceeded; the change may or may not be recorded: the state shows it once etcd answers again' });
    expect(etcdError(new Error('etcdserver: too many operations in txn request'), 'the commit', loc)).toMatchObject({ code: 'E_STATE_TOO_LARGE', hint: expect.stringMatching(/--max-txn-ops/) });
    expect(etcdError(new Error('etcdserver: request is too large'), 'the commit', loc)).toMatchObject({ code: 'E_STATE_TOO_LARGE' });
    expect(etcdError(new Error('etcdserver: permission denied'), 'the commit', loc)).toMatchObject({ code: 'E_STATE_AUTH' });
    expect(etcdError(new TypeError('x is undefined'), 'the commit', loc)).toMatchObject({ code: 'E_STATE_ETCD', message: expect.stringMatching(/^etcd client failed the commit/) });
  });
});
