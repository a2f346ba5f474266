/**
 * The seed's bug, on a real host process: a destroy sent while the host was stopped (SIGSTOP), whose
 * client gave up (Ctrl-C) before the host was resumed, must not run when it resumes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { planText } from './helpers.js';

let child: ChildProcess | undefined;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-sigstop-'));
afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGCONT');
    child.kill('SIGTERM');
    await new Promise((r) => child!.once('exit', r));
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

function post(body: string, headers: Record<string, string>): { req: http.ClientRequest; answer: Promise<{ status: number; body: string } | Error> } {
  const req = http.request({ socketPath: path.join(dir, 'control.sock'), path: '/v1/plans/destroy', method: 'POST', headers: { 'content-type': 'application/json', ...headers } });
  const answer = new Promise<{ status: number; body: string } | Error>((resolve) => {
    req.on('response', (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: b }));
    });
    req.on('error', (err) => resolve(err));
  });
  req.end(body);
  return { req, answer };
}

const ops = () => (fs.existsSync(path.join(dir, 'ops.log')) ? fs.readFileSync(path.join(dir, 'ops.log'), 'utf8').trim().split('\n').filter(Boolean) : []);

beforeAll(async () => {
  const fixture = path.join(import.meta.dirname, 'fixtures', 'stoppable-host.ts');
  child = spawn(process.execPath, ['--import', 'tsx', fixture, dir], { stdio: ['ignore', 'pipe', 'inherit'], cwd: path.join(import.meta.dirname, '..', '..') });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child!.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('READY')) resolve();
    });
    child!.once('exit', (code) => reject(new Error(`host exited ${code}`)));
  });
}, 30_000);

const body = JSON.stringify({ plans: [{ file: 'web.yaml', text: planText('web', 'alpha') }] });

/** stoppedThenGone sends a destroy to the stopped host, gives up (Ctrl-C), and resumes the host. */
async function stoppedThenGone(headers: Record<string, string>): Promise<void> {
  child!.kill('SIGSTOP');
  const stopped = post(body, headers);
  await new Promise((r) => setTimeout(r, 600));
  stopped.req.destroy(); // the client's Ctrl-C
  await stopped.answer;
  child!.kill('SIGCONT');
  await new Promise((r) => setTimeout(r, 500));
}

it('a destroy whose deadline passed while the host was stopped never runs', async () => {
  const before = ops().length;
  await stoppedThenGone({ 'x-factory-deadline': String(Date.now() + 300) });
  expect(ops().length).toBe(before);
}, 30_000);

it('nor does one without a deadline whose client hung up before the host resumed', async () => {
  const before = ops().length;
  await stoppedThenGone({});
  expect(ops().length).toBe(before);
}, 30_000);

it('the same request in time runs', async () => {
  const inTime = await post(body, { 'x-factory-deadline': String(Date.now() + 10_000) }).answer;
  expect(inTime).not.toBeInstanceOf(Error);
  expect((inTime as { body: string }).body).toContain('"result"');
  expect(ops()).toEqual(['destroyPlans']);
}, 30_000);
