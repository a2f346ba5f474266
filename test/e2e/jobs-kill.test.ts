/**
 * The kill -9 trial of scheduled jobs: 20 per-second jobs run by the built CLI's control host, which
 * is killed with SIGKILL at random moments and started again each time (the killed host's executor
 * may leave tasks running: they are adopted or recorded). At the end: no slot ran twice (each run
 * writes its id to its job's file), and every slot of each job from its creation to its final cursor
 * is accounted for exactly once, as a run kept or in the events (missed, skipped), with the job's
 * counts adding up. Everything is read through the CLI.
 */
import { mkdirSync } from 'node:fs';
import { expect, test } from 'vitest';
import type { RunRecord } from '../../src/jobs/types.js';
import { pidAlive, waitFor } from '../helpers/cli.js';
import { JobsScratch } from '../helpers/jobs-scratch.js';
import { accountJob, addTally, childrenOf, emptyTally, random } from '../helpers/jobs-trial.js';

const JOBS = 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('kill -9 of the control host at random moments during 20 per-second jobs: no slot runs twice, every slot is accounted for once', async () => {
  const seed = Number(process.env.JOBS_KILL_SEED ?? Date.now() % 1_000_000);
  const rand = random(seed);
  const why = `seed ${seed} (JOBS_KILL_SEED=${seed} repeats the moments)`;
  // every event kept, every run kept: the accounting reads them all
  const s = new JobsScratch('factory-jobs-kill-', { FACTORY_EVENTS_PER_SUBJECT: '100000', FACTORY_EVENTS_MAX: '1000000' });
  const executors = new Set<number>();
  try {
    mkdirSync(s.file('out'));
    const names = Array.from({ length: JOBS }, (_, i) => `j${String(i).padStart(2, '0')}`);
    // each run writes its id, then sleeps 0 to 1.5 s (from its pid)
    const jobYaml = (name: string) => `  - name: ${name}
    schedule: "* * * * * *"
    command: ${JSON.stringify(['sh', '-c', `echo "$FACTORY_RUN" >> ${s.file(`out/${name}`)}; n=$(( $$ % 16 )); sleep $((n / 10)).$((n % 10))`])}
    resources: {cpus: 0.01, mem: 16Mi}
    history: {succeeded: 1000, failed: 1000}
`;
    await s.apply(`name: storm\njobs:\n${names.map(jobYaml).join('')}`);

    const kills = 3 + Math.floor(rand() * 2);
    for (let k = 0; k < kills; k++) {
      const host = await s.startHost();
      await sleep(3000 + rand() * 3000);
      for (const pid of childrenOf(host.pid)) executors.add(pid);
      process.kill(host.pid, 'SIGKILL');
      expect(await waitFor(() => !pidAlive(host.pid), 5000, 20), `host ${host.pid} survived SIGKILL`).toBe(true);
      await sleep(rand() * 1000);
    }
    await s.startHost();
    await sleep(3000);
    await s.stopHost();
    // the runs still going end by themselves (1.5 s at most); their files are then complete
    await sleep(1600);

    const [jobs, events] = await Promise.all([s.jobs(), s.events()]);
    const history = new Map<string, RunRecord[]>();
    for (let i = 0; i < names.length; i += 5) {
      const batch = names.slice(i, i + 5);
      const got = await Promise.all(batch.map((n) => s.runs(`storm/${n}`)));
      batch.forEach((n, j) => history.set(n, got[j]!));
    }
    // nothing was dropped by the events' retention: each job's creation is still there
    const applied = events.filter((e) => e.kind === 'plan-applied');
    expect(applied.length).toBe(1);
    const createdAt = Date.parse(applied[0]!.at);

    let totals = emptyTally();
    for (const name of names) {
      const id = `storm/${name}`;
      const view = jobs.find((j) => j.id === id)!;
      totals = addTally(totals, accountJob({ id, view, runs: history.get(name)!, events: events.filter((e) => e.job === id), lines: s.lines(`out/${name}`), createdAt, why }));
    }
    console.info(`jobs kill -9 trial, ${why}: ${kills} kills; ${JSON.stringify(totals)}`);
    expect(totals.runs).toBeGreaterThan(0);
    expect(totals.missed).toBeGreaterThan(0); // each restart misses the slots while no host ran
  } finally {
    await s.close();
    for (const pid of executors) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  }
}, 120_000);
