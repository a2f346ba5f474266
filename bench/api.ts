/**
 * bench/api.ts (`npm run bench:api`): the control host's API, side by side in one run, against a
 * real `factory control serve --listen 127.0.0.1:0` (TLS) on this machine.
 *
 *   1. reads: GET one task (keep-alive HTTPS) while the host is idle and while it applies 1,000
 *      processes: p50 and p99 of each.
 *   2. a one-task `plan apply`: the CLI against the remote API (--control https://…), through the
 *      local socket (a host serves the state), and one-shot (FACTORY_CONTROL=off): medians,
 *      alternating the order run by run.
 *   3. 100 SSE subscribers: delay from a state change (the event's commit time) to its delivery to
 *      each subscriber: p50, p99, max.
 *   4. the state: one task's change in a state of 100k tasks (bench/state.ts).
 *
 * BENCH_ONLY=1,2,3,4 picks sections; BENCH_RUNS sets the applies timed per variant (default 10).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { ApiClient } from '../src/client/http.js';
import { startControlHost, BIN, type RunningHost } from '../test/helpers/control-host.js';
import { benchState } from './state.js';

const ONLY = new Set((process.env.BENCH_ONLY ?? '1,2,3,4').split(',').map((s) => s.trim()));
const RUNS = Number(process.env.BENCH_RUNS) || 10;

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}
const median = (xs: number[]) => quantile(xs, 0.5);
const f = (ms: number) => `${ms.toFixed(2)} ms`;

function planText(name: string, count: number): string {
  return `name: ${name}\nproject: bench\nprocesses:\n  - name: nap\n    count: ${count}\n    command: [sleep, "3600"]\n    resources: {cpus: 0.001, mem: 1Mi}\n`;
}

interface Ctx {
  dir: string;
  state: string;
  host: RunningHost;
  token: string;
  client: ApiClient;
  agent: https.Agent;
  env: NodeJS.ProcessEnv;
}

/** get does one keep-alive HTTPS GET and returns the time to the whole answer. */
function get(ctx: Ctx, urlPath: string): Promise<number> {
  const u = new URL(ctx.host.url!);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = https.request({ host: u.hostname, port: u.port, path: urlPath, agent: ctx.agent, headers: { authorization: `Bearer ${ctx.token}` } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`GET ${urlPath}: ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

async function reads(ctx: Ctx): Promise<void> {
  const one = path.join(ctx.dir, 'probe.yaml');
  fs.writeFileSync(one, planText('probe', 1));
  const apply = (file: string) => ctx.client.stream<{ ok: boolean }>('POST', '/v1/plans/apply', { plans: [{ file: path.basename(file), text: fs.readFileSync(file, 'utf8') }] }, { timeoutMs: 600_000 });
  await apply(one);
  const url = `/v1/tasks/${encodeURIComponent('probe/nap/0')}`;
  for (let i = 0; i < 20; i++) await get(ctx, url); // warm the connection and the JIT
  const idle: number[] = [];
  for (let i = 0; i < 300; i++) idle.push(await get(ctx, url));
  const many = path.join(ctx.dir, 'many.yaml');
  fs.writeFileSync(many, planText('many', 1000));
  let done = false;
  const t0 = performance.now();
  const applying = apply(many).finally(() => (done = true));
  const busy: number[] = [];
  while (!done) {
    const ms = await get(ctx, url);
    if (!done) busy.push(ms);
    await new Promise((r) => setTimeout(r, 2));
  }
  const r = await applying;
  const applyS = (performance.now() - t0) / 1000;
  console.log(`1. GET one task (keep-alive HTTPS), ${idle.length} reads idle, ${busy.length} reads during an apply of 1,000 processes (${applyS.toFixed(1)} s, ok=${r.ok})`);
  console.log(`   idle:         p50 ${f(quantile(idle, 0.5))}  p99 ${f(quantile(idle, 0.99))}`);
  console.log(`   during apply: p50 ${f(quantile(busy, 0.5))}  p99 ${f(quantile(busy, 0.99))}  max ${f(Math.max(...busy))}`);
  await ctx.client.stream('POST', '/v1/plans/destroy', { plans: [{ file: 'many.yaml', text: fs.readFileSync(many, 'utf8') }, { file: 'probe.yaml', text: fs.readFileSync(one, 'utf8') }] }, { timeoutMs: 600_000 });
}

function cli(args: string[], env: NodeJS.ProcessEnv, cwd: string): number {
  const t0 = performance.now();
  const r = spawnSync(BIN, args, { cwd, env, encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`factory ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return ms;
}

async function applies(ctx: Ctx): Promise<void> {
  const alone = path.join(ctx.dir, 'alone-state');
  const tokenFile = path.join(ctx.state, 'tokens', 'root');
  const remoteFlags = ['--control', ctx.host.url!, '--fingerprint', ctx.host.fingerprint!, '--token-file', tokenFile];
  const variants: Record<string, (file: string) => number> = {
    'remote API (--control https://…)': (file) => cli(['plan', 'apply', file, ...remoteFlags], ctx.env, ctx.dir),
    'local socket (host serves the state)': (file) => cli(['plan', 'apply', file, '--state', ctx.state], ctx.env, ctx.dir),
    'one-shot (FACTORY_CONTROL=off)': (file) => cli(['plan', 'apply', file, '--state', alone], { ...ctx.env, FACTORY_CONTROL: 'off' }, ctx.dir),
  };
  const names = Object.keys(variants);
  const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const undo: Record<string, string[]> = {
    [names[0]!]: remoteFlags,
    [names[1]!]: ['--state', ctx.state],
    [names[2]!]: ['--state', alone],
  };
  for (let r = 0; r < RUNS + 1; r++) {
    const order = names.map((_, i) => names[(i + r) % names.length]!);
    for (const n of order) {
      const file = path.join(ctx.dir, `one-${r}-${names.indexOf(n)}.yaml`);
      fs.writeFileSync(file, planText(`one${r}v${names.indexOf(n)}`, 1));
      const ms = variants[n]!(file);
      if (r > 0) times[n]!.push(ms); // the first round warms caches
      cli(['plan', 'destroy', file, ...undo[n]!], n === names[2] ? { ...ctx.env, FACTORY_CONTROL: 'off' } : ctx.env, ctx.dir);
    }
  }
  console.log(`2. a one-task plan apply through the CLI, medians of ${RUNS} runs each (order rotated run by run)`);
  const base = median(times[names[2]!]!);
  for (const n of names) console.log(`   ${n.padEnd(38)} ${median(times[n]!).toFixed(0)} ms  (${(median(times[n]!) / base).toFixed(2)}× one-shot)`);
}

async function sse(ctx: Ctx): Promise<void> {
  const u = new URL(ctx.host.url!);
  const subscribers = 100;
  const delays: number[] = [];
  const reqs: ReturnType<typeof https.request>[] = [];
  const agent = new https.Agent({ keepAlive: true, maxSockets: subscribers + 10, ca: fs.readFileSync(path.join(ctx.state, 'tls', 'cert.pem')) });
  let ready = 0;
  await new Promise<void>((resolve, reject) => {
    for (let i = 0; i < subscribers; i++) {
      const req = https.request({ host: u.hostname, port: u.port, path: '/v1/events?topic=token', agent, headers: { authorization: `Bearer ${ctx.token}` } }, (res) => {
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          const now = Date.now();
          buf += chunk;
          let i2: number;
          while ((i2 = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i2);
            buf = buf.slice(i2 + 2);
            const data = block.split('\n').find((l) => l.startsWith('data: '));
            if (data) delays.push(now - Date.parse((JSON.parse(data.slice(6)) as { at: string }).at));
          }
        });
        if (++ready === subscribers) resolve();
      });
      req.on('error', reject);
      req.end();
      reqs.push(req);
    }
  });
  await new Promise((r) => setTimeout(r, 500));
  const changes = 30;
  for (let i = 0; i < changes; i++) {
    await ctx.client.postJson('/v1/tokens', { scope: 'read', description: `bench ${i}` });
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 500));
  for (const r of reqs) r.destroy();
  agent.destroy();
  console.log(`3. ${subscribers} SSE subscribers, ${changes} state changes: ${delays.length} deliveries (expected ${subscribers * changes})`);
  console.log(`   delay from commit to delivery: p50 ${quantile(delays, 0.5)} ms  p99 ${quantile(delays, 0.99)} ms  max ${Math.max(...delays)} ms`);
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-bench-api-'));
  const state = path.join(dir, 'state');
  const env = { ...process.env, CI: '', FACTORY_STATE: '', FACTORY_INVENTORY: '', FACTORY_CONTROL_URL: '' };
  let host: RunningHost | undefined;
  try {
    console.log(`bench:api on ${os.cpus().length} cores, node ${process.version}`);
    if (ONLY.has('1') || ONLY.has('2') || ONLY.has('3')) {
      host = await startControlHost(state, { cwd: dir, env, listen: '127.0.0.1:0' });
      const token = fs.readFileSync(path.join(state, 'tokens', 'root'), 'utf8').trim();
      const ctx: Ctx = {
        dir, state, host, token, env,
        client: new ApiClient({ endpoints: [host.url!], token, fingerprints: [host.fingerprint!], timeoutMs: 600_000 }),
        agent: new https.Agent({ keepAlive: true, maxSockets: 1, ca: fs.readFileSync(path.join(state, 'tls', 'cert.pem')) }),
      };
      if (ONLY.has('1')) await reads(ctx);
      if (ONLY.has('2')) await applies(ctx);
      if (ONLY.has('3')) await sse(ctx);
      ctx.agent.destroy();
    }
    if (ONLY.has('4')) {
      console.log('4.');
      await benchState();
    }
  } finally {
    await host?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
