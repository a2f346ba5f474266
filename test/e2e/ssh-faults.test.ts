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
import { runCli, scratchDir } from '../helpers/cli.js';
import { iptablesAvailable, SshdFleet, sshdSkipReason } from '../harness/sshd.js';

const skip = sshdSkipReason();
const scratch = scratchDir('factory-ssh-faults-');
let fleet: SshdFleet;

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
  fleet = await SshdFleet.start(3, { first: 11 });
}, 60_000);

afterAll(async () => {
  await fleet?.stop(true);
  scratch.cleanup();
});

describe.skipIf(skip)(`SSH transport: bootstrap and faults${skip ? ` (skipped: ${skip})` : ''}`, () => {
  test('uploads the executor only when missing, then starts it over exec', async () => {
    const bundle = uniqueBundle();
    const remote = path.join(process.env.HOME ?? '/root', remoteExecutorPath(bundle.hash));
    try {
      const opts = { host: '127.0.11.1', port: 2222, user: 'root', identityFile: fleet.clientKey, knownHostsFile: fleet.knownHosts, bundle };
      const t1 = new SshTransport('h11', opts);
      const c1 = await ExecutorClient.connect(t1, { workDir: path.join(scratch.dir, 'w11') });
      expect(t1.uploaded).toBe(true);
      expect(fs.readFileSync(remote).equals(bundle.content)).toBe(true);
      expect(c1.registration.attributes.node).toMatch(/^v\d+/);
      expect(c1.registration.resources.cpus).toBeGreaterThan(0);
      await c1.close();
      const t2 = new SshTransport('h11', opts);
      const c2 = await ExecutorClient.connect(t2, { workDir: path.join(scratch.dir, 'w11') });
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
      const opts = { host: '127.0.11.1', port: 2222, user: 'root', identityFile: fleet.clientKey, knownHostsFile: fleet.knownHosts, bundle };
      const c1 = await ExecutorClient.connect(new SshTransport('h11', opts), { workDir: path.join(scratch.dir, 'w11t') });
      await c1.close();
      // a disk that filled up mid-upload, say: the file is there but cut short
      fs.truncateSync(remote, Math.floor(bundle.content.length / 2));
      const t2 = new SshTransport('h11', opts);
      const c2 = await ExecutorClient.connect(t2, { workDir: path.join(scratch.dir, 'w11t') });
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
      const t = new SshTransport('h11', { host: '127.0.11.1', port: 2222, user: 'root', identityFile: fleet.clientKey, knownHostsFile: fleet.knownHosts, bundle, closeTimeoutMs: 300 });
      const err = await ExecutorClient.connect(t, { workDir: path.join(scratch.dir, 'w11h'), timeoutMs: 1500 }).catch((e: Error) => e);
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
      const t = new SshTransport('h12', { host: '127.0.12.1', port: 2222, user: 'root', identityFile: fleet.clientKey, knownHostsFile: fleet.knownHosts, bundle });
      const c = await ExecutorClient.connect(t, { workDir: path.join(scratch.dir, 'w12') });
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
    const wrongKey = path.join(scratch.dir, 'wrong_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', wrongKey]);
    const badKnown = path.join(scratch.dir, 'known_hosts_changed');
    const other = fleet.host(11).hostKeyPub.split(' ').slice(0, 2).join(' ');
    fs.writeFileSync(badKnown, `[127.0.13.1]:2222 ${other}\n`);
    const ssh = (host: string, extra = '') => `{host: ${host}, port: 2222, user: root, identityFile: ${fleet.clientKey}${extra}}`;
    const inv = path.join(scratch.dir, 'faults.yaml');
    fs.writeFileSync(
      inv,
      `settings: {connectTimeout: 3s, knownHostsFile: ${fleet.knownHosts}}
idcs:
  - name: bj1
    clusters:
      - name: bj1-a
        agents:
          - {name: good, ssh: ${ssh('127.0.11.1')}, workDir: ${scratch.dir}/good}
          - {name: unreachable, ssh: ${ssh('127.0.19.1')}, workDir: ${scratch.dir}/u}
          - {name: wrongkey, ssh: {host: 127.0.12.1, port: 2222, user: root, identityFile: ${wrongKey}}, workDir: ${scratch.dir}/wk}
          - {name: wronguser, ssh: {host: 127.0.12.1, port: 2222, user: nosuchuser, identityFile: ${fleet.clientKey}}, workDir: ${scratch.dir}/wu}
          - {name: nonode, ssh: ${ssh('127.0.13.1', ', nodePath: /nonexistent/bin/node')}, workDir: ${scratch.dir}/nn}
          - {name: changedkey, ssh: ${ssh('127.0.13.1', `, knownHostsFile: ${badKnown}`)}, workDir: ${scratch.dir}/ck}
`,
    );
    const state = path.join(scratch.dir, 'state');
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
    const kh = path.join(scratch.dir, 'kh_empty');
    const spec = (policy: 'strict' | 'accept-new') =>
      new SshTransport('h13', { host: '127.0.13.1', port: 2222, user: 'root', identityFile: fleet.clientKey, knownHostsFile: kh, hostKeyPolicy: policy });
    await expect(spec('strict').connect()).rejects.toThrow(/agent h13: host \[127\.0\.13\.1\]:2222 is not in/);
    const conn = await spec('accept-new').connect();
    conn.end();
    expect(fs.readFileSync(kh, 'utf8')).toContain('[127.0.13.1]:2222 ssh-ed25519 ');
    const again = await spec('strict').connect();
    again.end();
  });

  test.skipIf(!iptablesAvailable())(`a partitioned agent is marked lost after its missed heartbeats${!iptablesAvailable() ? ' (skipped: iptables cannot add rules here)' : ''}`, async () => {
    const agent: AgentSpec = {
      name: 'p13', idc: 'x', cluster: 'x', resources: {}, attributes: {}, workDir: path.join(scratch.dir, 'p13'),
      transport: { kind: 'ssh', host: '127.0.13.1', port: 2222, user: 'root', identityFile: fleet.clientKey, knownHostsFile: fleet.knownHosts },
    };
    const events: string[] = [];
    const pool = await AgentPool.connect([agent], {
      stateDir: scratch.dir,
      stateId: 'st-0123456789ab',
      settings: { heartbeatMs: 200, lostAfter: 3, connectTimeoutMs: 2000 },
      onProgress: (a, ev, d) => events.push(`${a} ${ev} ${d ?? ''}`),
    });
    try {
      const c = pool.connected.get('p13')!;
      expect(c).toBeDefined();
      await fleet.partition(13);
      const pending = c.client.inspect(30_000).catch((e: Error) => e);
      const t0 = Date.now();
      const err = (await pending) as Error;
      // the heartbeat watch (3 × 200 ms) ends the call long before its own 30 s timeout would
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(err.message).toMatch(/agent p13: lost: no heartbeat/);
      expect(pool.failed.get('p13')?.error).toMatch(/lost: no heartbeat/);
      expect(events.some((e) => e.startsWith('p13 lost'))).toBe(true);
    } finally {
      await fleet.heal(13);
      await pool.close();
    }
  });
});
