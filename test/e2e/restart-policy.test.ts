/**
 * Restart policies through the built CLI: a one-shot task that finished cleanly is left alone by
 * `on-failure`, a failed one is started again; `always` restarts both.
 */
import { afterAll, expect, test } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCli, scratchDir, waitFor } from '../helpers/cli.js';

const scratch = scratchDir();
const state = path.join(scratch.dir, 'state');
const plan = path.join(scratch.dir, 'oneshot.yaml');
writeFileSync(
  plan,
  `name: oneshot
processes:
  - name: ok
    restart: on-failure
    command: ["true"]
  - name: bad
    restart: on-failure
    command: ["false"]
  - name: again
    restart: always
    command: ["true"]
`,
);

afterAll(async () => {
  await runCli(['plan', 'destroy', plan, '--state', state], { cwd: scratch.dir });
  scratch.cleanup();
});

test('on-failure leaves a clean exit alone and restarts a failure; always restarts both', async () => {
  const first = await runCli(['plan', 'apply', plan, '--state', state, '--json'], { cwd: scratch.dir });
  // `false` fails at once: apply reports it (exit 3: some task failed to start) and the others as started
  expect(first.code, first.stderr).toBe(3);
  const failed = JSON.parse(first.stdout).results.filter((r: { ok: boolean }) => !r.ok).map((r: { task: string }) => r.task);
  expect(failed.filter((t: string) => t !== 'oneshot/bad/0')).toEqual([]);
  const states = async () => {
    const s = JSON.parse((await runCli(['status', '--json', '--state', state], { cwd: scratch.dir })).stdout);
    return Object.fromEntries(s.tasks.map((t: { task: string; state: string }) => [t.task, t.state]));
  };
  expect(await waitFor(async () => Object.values(await states()).every((st) => st !== 'running' && st !== 'pending'), 10_000, 200)).toBe(true);
  expect(await states()).toEqual({ 'oneshot/again/0': 'finished', 'oneshot/bad/0': 'failed', 'oneshot/ok/0': 'finished' });
  const second = await runCli(['plan', 'diff', plan, '--state', state, '--json'], { cwd: scratch.dir });
  const d = JSON.parse(second.stdout);
  const actions = Object.fromEntries(d.placements.map((p: { task: string; action: string }) => [p.task, p.action]));
  expect(actions).toEqual({ 'oneshot/again/0': 'restart', 'oneshot/bad/0': 'restart', 'oneshot/ok/0': 'keep' });
  expect(d.changes).toEqual({ create: 2, destroy: 0, update: 0 });
});
