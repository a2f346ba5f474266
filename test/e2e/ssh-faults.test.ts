/**
 * The SSH transport against real sshd instances on loopback (hosts 127.0.11-13.1): bootstrap only
 * when missing, and every bad input or fault — unreachable host, wrong key, wrong user, no Node,
 * changed host key, a dead executor, a partition — ends as a clear per-agent error, without hanging.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AgentPool } from '../../src/control/agents.js';
import type { AgentSpec } from '../../src/spec/model.js';
import { ExecutorClient } from '../../src/transport/client.js';
import { executorBundle, remoteExecutorPath, SshTransport, type ExecutorBundle } from '../../src/transport/ssh/index.js';
import { runCli } from '../helpers/cli.js';
import { iptablesAvailable } from '../harness/sshd.js';
import { oneCluster } from '../helpers/inventory.js';
import { sshTestFleet } from '../helpers/ssh-fleet.js';

const ssh = sshTestFleet('factory-ssh-faults-');
const skip = ssh.skip;

function uniqueBundle(): ExecutorBundle {
  const base = executorBundle();
  const content = Buffer.concat([base.content, Buffer.from(`\n// test ${Date.now()}-${Math.random()}\n`)]);
  // its real hash: the launcher checks a cached file against the hash in its name
  return { path: base.path, content, hash: createHash('sha256').update(content).digest('hex').slice(0, 16) };
}

function findPids(needle: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(needle)) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

beforeAll(async () => {
  if (skip) return;
  await ssh.start({ first: 11, hosts: 3 });
}, 60_000);

afterAll(() => ssh.stop());

describe.skipIf(skip)(`SSH transport: bootstrap and faults${skip ? ` (skipped: ${skip})` : ''}`, () => {
  test('uploads the executor only when missing, then starts it over exec', async () => {
    const bundle = uniqueBundle();
    const remote = path.join(process.env.HOME ?? '/root', remoteExecutorPath(bundle.hash));
    try {
      const opts = { ...ssh.target(11), bundle };
      const t1 = new SshTransport('h11', opts);
      const c1 = await ExecutorClient.connect(t1, { workDir: path.join(ssh.dir, 'w11') });
      expect(t1.uploaded).toBe(true);
      expect(fs.readFileSync(remote).equals(bundle.content)).toBe(true);
      expect(c1.registration.attributes.node).toMatch(/^v\d+/);
      expect(c1.registration.resources.cpus).toBeGreaterThan(0);
      await c1.close();
      const t2 = new SshTransport('h11', opts);
      const c2 = await ExecutorClient.connect(t2, { workDir: path.join(ssh.dir, 'w11') });
      expect(t2.uploaded).toBe(false);
      await c2.close();
    } finally {
      fs.rmSync(remote, { force: true });
    }
  });

  test('a truncated cached executor is checked against its hash, replaced, and the agent comes up', async () => {
    const bundle = uniqueBundle();
    const remote = path.join(process.env.HOME ?? '/root', remoteExecutorPath(bundle.hash));
    try {
      const opts = { ...ssh.target(11), bundle };
      const c1 = await ExecutorClient.connect(new SshTransport('h11', opts), { workDir: path.join(ssh.dir, 'w11t') });
      await c1.close();
      // a disk that filled up mid-upload, say: the file is there but cut short
      fs.truncateSync(remote, Math.floor(bundle.content.length / 2));
      const t2 = new SshTransport('h11', opts);
      const c2 = await ExecutorClient.connect(t2, { workDir: path.join(ssh.dir, 'w11t') });
      expect(t2.uploaded).toBe(true);
      expect(fs.readFileSync(remote).equals(bundle.content)).toBe(true);
      expect(c2.registration.attributes.node).toMatch(/^v\d+/);
      await c2.close();
    } finally {
      fs.rmSync(remote, { force: true });
    }
  });

  test('an executor that never answers hello is killed on the agent, not left behind as an orphan', async () => {
    const base = executorBundle();
    // reads its stdin and ignores it, and does not end at EOF: a hung executor
    const content = Buffer.from(`process.stdin.resume(); setInterval(() => {}, 1000); // ${Date.now()}-${Math.random()}\n`);
    const bundle: ExecutorBundle = { path: base.path, content, hash: createHash('sha256').update(content).digest('hex').slice(0, 16) };
    const remote = path.join(process.env.HOME ?? '/root', remoteExecutorPath(bundle.hash));
    try {
      const t = new SshTransport('h11', { ...ssh.target(11), bundle, closeTimeoutMs: 300 });
      const err = await ExecutorClient.connect(t, { workDir: path.join(ssh.dir, 'w11h'), timeoutMs: 1500 }).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/h11/);
      let left = findPids(`executor-${bundle.hash}`);
      for (let i = 0; i < 50 && left.length > 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        left = findPids(`executor-${bundle.hash}`);
      }
      expect(left).toEqual([]);
    } finally {
      for (const pid of findPids(`executor-${bundle.hash}`)) process.kill(pid, 'SIGKILL');
      fs.rmSync(remote, { force: true });
    }
  });

  test('an executor that dies mid-call fails the call with an error naming the agent', async () => {
    const bundle = uniqueBundle();
    const remote = path.join(process.env.HOME ?? '/root', remoteExecutorPath(bundle.hash));
    try {
      const t = new SshTransport('h12', { ...ssh.target(12), bundle });
      const c = await ExecutorClient.connect(t, { workDir: path.join(ssh.dir, 'w12') });
      const pids = findPids(`executor-${bundle.hash}`);
      expect(pids.length).toBe(1);
      const pending = c.logs('none/x/0', { follow: true }, () => undefined).catch((e: Error) => e);
      process.kill(pids[0]!, 'SIGKILL');
      const err = (await pending) as Error;
      expect(err).toBeInstanceOf(Error);
      expect(err.message).toMatch(/^agent h12: /);
      await c.close();
    } finally {
      fs.rmSync(remote, { force: true });
    }
  });

  test('bad input: each agent gets its own clear error, the good one works, nothing hangs', async () => {
    const wrongKey = path.join(ssh.dir, 'wrong_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', wrongKey]);
    const badKnown = path.join(ssh.dir, 'known_hosts_changed');
    const other = ssh.fleet.host(11).hostKeyPub.split(' ').slice(0, 2).join(' ');
    fs.writeFileSync(badKnown, `[127.0.13.1]:2222 ${other}\n`);
    const inv = path.join(ssh.dir, 'faults.yaml');
    ssh.writeInventory(
      inv,
      oneCluster('bj1', 'bj1-a', [
        { name: 'good', host: 11, workDir: `${ssh.dir}/good` },
        { name: 'unreachable', host: 19, workDir: `${ssh.dir}/u` },
        { name: 'wrongkey', host: 12, ssh: { identityFile: wrongKey }, workDir: `${ssh.dir}/wk` },
        { name: 'wronguser', host: 12, ssh: { user: 'nosuchuser' }, workDir: `${ssh.dir}/wu` },
        { name: 'nonode', host: 13, ssh: { nodePath: '/nonexistent/bin/node' }, workDir: `${ssh.dir}/nn` },
        { name: 'changedkey', host: 13, ssh: { knownHostsFile: badKnown }, workDir: `${ssh.dir}/ck` },
      ]),
      { connectTimeout: '3s' },
    );
    const state = path.join(ssh.dir, 'state');
    const t0 = Date.now();
    const r = await runCli(['status', '--json', '--inventory', inv, '--state', state], { timeoutMs: 30_000 });
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as { agents: { name: string; state: string; error?: string }[] };
    const by = Object.fromEntries(s.agents.map((a) => [a.name, a]));
    expect(by.good).toMatchObject({ state: 'ready' });
    expect(by.unreachable).toMatchObject({ state: 'lost' });
    expect(by.unreachable!.error).toMatch(/connection refused/);
    expect(by.wrongkey!.error).toMatch(/authentication failed for root@127\.0\.12\.1:2222/);
    expect(by.wronguser!.error).toMatch(/authentication failed for nosuchuser@127\.0\.12\.1:2222/);
    expect(by.nonode!.error).toMatch(/Node\.js not found on the agent .*\/nonexistent\/bin\/node/);
    expect(by.changedkey!.error).toMatch(/HOST KEY CHANGED for \[127\.0\.13\.1\]:2222/);
    for (const n of ['unreachable', 'wrongkey', 'wronguser', 'nonode', 'changedkey']) expect(by[n]!.state).toBe('lost');
    // the refused key was not written anywhere
    expect(fs.readFileSync(badKnown, 'utf8').trim().split('\n')).toHaveLength(1);
  }, 40_000);

  test('an unknown host is refused in strict mode and recorded with accept-new', async () => {
    const kh = path.join(ssh.dir, 'kh_empty');
    const spec = (policy: 'strict' | 'accept-new') =>
      new SshTransport('h13', { ...ssh.target(13), knownHostsFile: kh, hostKeyPolicy: policy });
    await expect(spec('strict').connect()).rejects.toThrow(/agent h13: host \[127\.0\.13\.1\]:2222 is not in/);
    const conn = await spec('accept-new').connect();
    conn.end();
    expect(fs.readFileSync(kh, 'utf8')).toContain('[127.0.13.1]:2222 ssh-ed25519 ');
    const again = await spec('strict').connect();
    again.end();
  });

  test.skipIf(!iptablesAvailable())(`a partitioned agent is marked lost after its missed heartbeats${!iptablesAvailable() ? ' (skipped: iptables cannot add rules here)' : ''}`, async () => {
    const agent: AgentSpec = {
      name: 'p13', idc: 'x', cluster: 'x', resources: {}, attributes: {}, workDir: path.join(ssh.dir, 'p13'),
      transport: { kind: 'ssh', ...ssh.target(13) },
    };
    const events: string[] = [];
    const pool = await AgentPool.connect([agent], {
      stateDir: ssh.dir,
      stateId: 'st-0123456789ab',
      settings: { heartbeatMs: 200, lostAfter: 3, connectTimeoutMs: 2000 },
      onProgress: (a, ev, d) => events.push(`${a} ${ev} ${d ?? ''}`),
    });
    try {
      const c = pool.connected.get('p13')!;
      expect(c).toBeDefined();
      await ssh.fleet.partition(13);
      const pending = c.client.inspect(30_000).catch((e: Error) => e);
      const t0 = Date.now();
      const err = (await pending) as Error;
      // the heartbeat watch (3 × 200 ms) ends the call long before its own 30 s timeout would
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(err.message).toMatch(/agent p13: lost: no heartbeat/);
      expect(pool.failed.get('p13')?.error).toMatch(/lost: no heartbeat/);
      expect(events.some((e) => e.startsWith('p13 lost'))).toBe(true);
    } finally {
      await ssh.fleet.heal(13);
      await pool.close();
    }
  });
});
