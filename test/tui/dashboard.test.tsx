/**
 * The dashboard as the operator sees it: ink-testing-library renders <Dashboard> from an in-memory
 * state, keys are typed into its stdin, and the frames are checked.
 */
import { cleanup, render } from 'ink-testing-library';
import { afterEach, describe, expect, test, vi } from 'vitest';
import type { DashboardActions } from '../../src/tui/actions.js';
import { Dashboard } from '../../src/tui/Dashboard.js';
import { MemoryStateSource } from '../../src/tui/state-source.js';
import { CRASHY, sampleDeployments, sampleState, sampleStateWithDeployments, sampleStateWithJobs, task } from './fixtures.js';

const NOW = Date.parse('2026-01-01T00:00:30Z');
const tick = () => new Promise((r) => setTimeout(r, 50));

/** settle polls until check() holds or timeoutMs passes (it never fails by itself: assertions follow). */
async function settle(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
}

function fakeActions(over: Partial<DashboardActions> = {}): DashboardActions {
  return {
    restartTask: vi.fn(async (t: string) => `restarted ${t}`),
    drain: vi.fn(async (a: string, undo: boolean) => (undo ? `${a} accepts new tasks again` : `${a} draining: 1 task moved, none left`)),
    vm: vi.fn(async (t: string, action: string) => `${t}: ${action} done`),
    logs: vi.fn(async (_t: string, onData: (s: 'stdout' | 'stderr', c: string) => void) => onData('stdout', 'hello from the task\n')),
    runJob: vi.fn(async (j: string) => `${j}/2026-01-01T00:00:31.000Z: started on h1`),
    suspendJob: vi.fn(async (j: string, suspend: boolean) => `${j} ${suspend ? 'suspended' : 'resumed'}`),
    ...over,
  };
}

function mount(opts: { columns?: number; rows?: number; actions?: DashboardActions; source?: MemoryStateSource } = {}) {
  const source = opts.source ?? new MemoryStateSource(sampleState(), NOW);
  const actions = opts.actions ?? fakeActions();
  const app = render(
    <Dashboard source={source} actions={actions} stateLabel="/tmp/state" size={{ columns: opts.columns ?? 100, rows: opts.rows ?? 30 }} now={() => NOW} tickMs={0} />,
  );
  // ready: the first frame is drawn and ink's input effect has run (a fixed sleep raced it under load)
  const ready = settle(() => (app.lastFrame() ?? '').length > 0).then(tick);
  const press = async (...keys: string[]) => {
    await ready;
    for (const k of keys) {
      const before = app.lastFrame();
      app.stdin.write(k);
      // most keys redraw; wait for that (bounded), then let effects settle
      await settle(() => app.lastFrame() !== before, 1_000);
      await tick();
    }
  };
  return { app, source, actions, press, frame: () => app.lastFrame() ?? '' };
}

afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
});

describe('<Dashboard>', () => {
  test('overview: IDCs and clusters with bars and agents by state, recent events, help bar', () => {
    const { frame } = mount();
    const f = frame();
    expect(f).toContain('1 Overview');
    expect(f).toMatch(/bj1\s+2 ag/);
    expect(f).toMatch(/bj1-a.*cpu .*1 ready 1 draining/);
    expect(f).toMatch(/sh2-a.*1 lost/);
    expect(f).toContain('Recent events');
    expect(f).toContain('agent h3 unreachable');
    expect(f).toMatch(/q\s+quit.*\?\s+help/);
    expect(f.split('\n').length).toBeLessThanOrEqual(29);
  });

  test('tasks view lists tasks with agent, driver, state, VM power and health; j moves the selection', async () => {
    const { press, frame } = mount({ columns: 160 });
    await press('3');
    const f = frame();
    expect(f).toMatch(/TASK\s+GROUP\s+PROJECT\s+AGENT\s+DRIVER\s+STATE\s+POWER\s+HEALTH\s+PID\s+DETAIL/);
    expect(f).toMatch(/farm\/render\/0\s+render\s+acme\s+h1\s+libvirt\s+running\s+running/);
    expect(f).toMatch(/web\/api\/1 .*unhealthy/);
    expect(f).toMatch(/web\/api\/2 .*failed.*exit 3/);
    expect(f).toContain('1/6');
    await press('j', 'j');
    expect(frame()).toContain('3/6');
  });

  test('Enter drills from a cluster to its agents and to an agent\'s tasks; Esc goes back', async () => {
    const { press, frame } = mount();
    await press('j', '\r');
    expect(frame()).toMatch(/AGENT\s+IDC\/CLUSTER\s+STATE/);
    expect(frame()).toContain('in bj1/bj1-a');
    expect(frame()).not.toContain('h3');
    await press('\r');
    expect(frame()).toContain('on agent h1');
    expect(frame()).toContain('web/api/10');
    expect(frame()).not.toContain('web/api/1 ');
    await press('\u001B');
    await tick();
    expect(frame()).toContain('2 Agents');
  });

  test('/ filters as you type', async () => {
    const { press, frame } = mount();
    await press('3', '/', 's', 't', 'a', 't', 'e', ':', 'f');
    expect(frame()).toContain('/state:f');
    expect(frame()).toContain('web/api/2');
    expect(frame()).not.toContain('farm/render/0');
    expect(frame()).toContain('1/1');
  });

  test('r asks, y restarts through the actions and shows the outcome', async () => {
    const actions = fakeActions();
    const { press, frame } = mount({ actions });
    await press('3', 'j', 'j', 'j', 'j', 'r');
    expect(frame()).toContain('Restart web/api/2 on h1? [y/N]');
    await press('y');
    await tick();
    expect(actions.restartTask).toHaveBeenCalledWith('web/api/2');
    expect(frame()).toContain('restarted web/api/2');
  });

  test('d drains the selected agent after confirmation; n cancels', async () => {
    const actions = fakeActions();
    const { press, frame } = mount({ actions });
    await press('2', 'd', 'n');
    expect(actions.drain).not.toHaveBeenCalled();
    await press('d');
    expect(frame()).toContain('Drain h1?');
    await press('y');
    await tick();
    expect(actions.drain).toHaveBeenCalledWith('h1', false, expect.any(Function));
    expect(frame()).toContain('h1 draining');
  });

  test('VM actions say so when unavailable; l shows logs; ? shows help', async () => {
    const actions = fakeActions({ vm: undefined });
    const { press, frame } = mount({ actions });
    await press('3', 'j', 'b');
    expect(frame()).toContain('VM power actions are unavailable');
    await press('l');
    await new Promise((r) => setTimeout(r, 150));
    expect(frame()).toContain('logs farm/render/0');
    expect(frame()).toContain('hello from the task');
    await press('\u001B');
    await tick();
    await press('?');
    expect(frame()).toContain('drill in');
  });

  test('a new state version shows up without a key press', async () => {
    const { source, press, frame } = mount();
    await press('3');
    const next = sampleState();
    next.tasks['web/api/3'] = task('web/api/3', 'h1', { state: 'pending', pid: undefined });
    source.push(next, { now: NOW });
    await tick();
    expect(frame()).toContain('web/api/3');
    expect(frame()).toContain('1/7');
  });

  test('5 opens the jobs view: schedule, next slot, last result, runs going, counts; the selected job\'s runs below', async () => {
    const { press, frame } = mount({ columns: 120, source: new MemoryStateSource(sampleStateWithJobs(), NOW) });
    expect(frame()).toMatch(/tasks 6 \(.*\) · jobs 4 \(1 going, 1 suspended\)/);
    await press('5');
    const f = frame();
    expect(f).toContain('5 Jobs');
    expect(f).toMatch(/JOB\s+SCHEDULE\s+NEXT\s+LAST RUN\s+GOING\s+OK\s+FAIL\s+MISS\s+SKIP/);
    expect(f).toMatch(/etl\/nightly\s+0 2 \* \* \* Europe\/Paris\s+2026-01-02 01:00:00Z\s+failed\s+0\s+5\s+1\s+1\s+2/);
    expect(f).toMatch(/etl\/report\s+after nightly\s+-\s+-\s+0\s+0\s+0\s+0\s+0/);
    expect(f).toMatch(/web\/backup\s+\*\/15 \* \* \* \*\s+suspended\s+succeeded\s+0\s+10\s+0\s+0\s+3/);
    expect(f).toMatch(/web\/tick\s+\* \* \* \* \* \*\s+2026-01-01 00:00:30Z\s+-\s+1\s+29/);
    // the first job is selected: its runs, newest first
    expect(f).toContain('Runs of etl/nightly');
    expect(f).toMatch(/SLOT\s+TRIGGER\s+STATE\s+ATTEMPT\s+AGENT\s+EXIT\s+REASON/);
    expect(f).toMatch(/2026-01-01 01:00:00Z\s+schedule\s+failed\s+2\s+h1\s+3\s+exit code 3/);
    expect(f).toMatch(/2025-12-31 01:00:00Z\s+schedule\s+succeeded\s+1\s+h2\s+0/);
    expect(f).toMatch(/2025-12-30 01:00:00Z\s+schedule\s+missed\s+1\s+-\s+-\s+no agent fits: cpus/);
    expect(f).toMatch(/r\s+run now.*s\s+suspend\/resume/);
    expect(f.split('\n').length).toBeLessThanOrEqual(29);
    await press('G');
    expect(frame()).toContain('Runs of web/tick');
    expect(frame()).toMatch(/2026-01-01 00:00:29Z\s+schedule\s+running\s+1\s+h1/);
    expect(frame()).toContain('4/4');
    await press('k');
    expect(frame()).toContain('Runs of web/backup');
    expect(frame()).toContain('No runs kept.');
  });

  test('jobs view: r runs the selected job now and s suspends or resumes it, each after a confirmation', async () => {
    const actions = fakeActions();
    const { press, frame } = mount({ actions, source: new MemoryStateSource(sampleStateWithJobs(), NOW) });
    await press('5', 'r');
    expect(frame()).toContain('Run etl/nightly now, outside its schedule? [y/N]');
    await press('y');
    await settle(() => frame().includes('started on h1'));
    expect(actions.runJob).toHaveBeenCalledWith('etl/nightly');
    expect(frame()).toContain('etl/nightly/2026-01-01T00:00:31.000Z: started on h1');
    expect(actions.restartTask).not.toHaveBeenCalled();

    await press('s');
    expect(frame()).toContain('Suspend etl/nightly? Its slots are skipped until it is resumed. [y/N]');
    await press('n');
    expect(actions.suspendJob).not.toHaveBeenCalled();
    await press('j', 'j', 's'); // web/backup is suspended: s resumes it
    expect(frame()).toContain('Resume web/backup (its next slots run again)? [y/N]');
    await press('y');
    await settle(() => frame().includes('web/backup resumed'));
    expect(actions.suspendJob).toHaveBeenCalledWith('web/backup', false);
    expect(actions.vm).not.toHaveBeenCalled();

    // a failure says why, on the status line
    const failing = fakeActions({ runJob: vi.fn(async () => Promise.reject(new Error('web/tick: not started: a run is going (concurrency forbid)'))) });
    const second = mount({ actions: failing, source: new MemoryStateSource(sampleStateWithJobs(), NOW) });
    await second.press('5', '/', 't', 'i', 'c', 'k', '\r', 'r', 'y');
    await settle(() => second.frame().includes('job-run failed'));
    expect(second.frame()).toContain('job-run failed: web/tick: not started: a run is going (concurrency forbid)');
  });

  test('a job event opens its job in the jobs view; without jobs the view says where they come from', async () => {
    const data = sampleStateWithJobs();
    data.events.push({ rev: 4, topic: 'job', at: '2026-01-01T00:00:03.000Z', kind: 'job-run-failed', job: 'etl/nightly', run: 'etl/nightly/2026-01-01T01:00:00.000Z', agent: 'h1', message: 'etl/nightly/2026-01-01T01:00:00.000Z failed (exit code 3)' });
    const { press, frame } = mount({ source: new MemoryStateSource(data, NOW) });
    await press('4', '\r');
    expect(frame()).toContain('filter "etl/nightly"');
    expect(frame()).toContain('Runs of etl/nightly');
    expect(frame()).toContain('1/1');

    const empty = mount();
    await empty.press('5');
    expect(empty.frame()).toContain('No jobs (apply a plan with a jobs: section; they run on the control host).');
    await empty.press('r');
    expect(empty.frame()).toContain('no job selected');
  });

  test('80×24 and 40×12: degrades without breaking (frame fits, key columns stay)', async () => {
    for (const [columns, rows] of [
      [80, 24],
      [40, 12],
    ] as const) {
      const { press, frame, app } = mount({ columns, rows, source: new MemoryStateSource({ ...sampleStateWithJobs(), ...sampleDeployments() }, NOW) });
      await press('3');
      const lines = frame().split('\n');
      expect(lines.length).toBeLessThanOrEqual(rows - 1);
      for (const l of lines) expect(l.replace(/\u001b\[[0-9;]*m/g, '').length).toBeLessThanOrEqual(columns);
      expect(frame()).toContain('farm/render/0');
      await press('5');
      const jobLines = frame().split('\n');
      expect(jobLines.length).toBeLessThanOrEqual(rows - 1);
      for (const l of jobLines) expect(l.replace(/\u001b\[[0-9;]*m/g, '').length).toBeLessThanOrEqual(columns);
      expect(frame()).toContain('etl/nightly');
      expect(frame()).toContain('Runs of etl/nightly');
      // at 80 columns the id and schedule shrink; every count stays
      if (columns === 80) expect(frame()).toMatch(/etl\/nightly\s+0 2 .*2026-01-02 01:00:00Z\s+failed\s+0\s+5\s+1\s+1\s+2/);
      await press('6');
      const deployLines = frame().split('\n');
      expect(deployLines.length).toBeLessThanOrEqual(rows - 1);
      for (const l of deployLines) expect(l.replace(/\u001b\[[0-9;]*m/g, '').length).toBeLessThanOrEqual(columns);
      // at 80 columns AGE goes; every count stays
      if (columns === 80) expect(frame()).toMatch(/dep-0b0b0b0b0b\s+farm\/render\s+waiting-promotion\s+1\s+1\s+1\s+factory dep/);
      app.unmount();
    }
  });

  test('6 opens the deployments view: status, old/new/healthy counts, a canary waiting for promotion; the selected one\'s tasks below', async () => {
    const { press, frame } = mount({ columns: 130, source: new MemoryStateSource(sampleStateWithDeployments(), NOW) });
    // the header says what is deploying, and counts the crash-looping task
    expect(frame()).toMatch(/tasks 7 \(4 running, 1 crash-loop, 1 failed, 1 lost\) · deploying 2 \(1 to promote\)/);
    await press('6');
    const f = frame();
    expect(f).toContain('6 Deploys');
    expect(f).toMatch(/DEPLOYMENT\s+GROUP\s+STATUS\s+OLD\s+NEW\s+HEALTHY\s+AGE\s+NOTE/);
    expect(f).toMatch(/dep-0b0b0b0b0b\s+farm\/render\s+waiting-promotion\s+1\s+1\s+1\s+10s\s+factory deploy promote dep-0b0b0b0b0b/);
    expect(f).toMatch(/dep-0a0a0a0a0a\s+web\/api\s+running\s+3\s+2\s+1\s+20s/);
    expect(f).toMatch(/dep-0c0c0c0c0c\s+batch\/tick\s+reverted\s+0\s+0\s+0\s+1h\s+reverted by dep-0d0d0d0d0d/);
    // the newest is selected: where it stands, its policy, its canary
    expect(f).toMatch(/dep-0b0b0b0b0b farm\/render: waiting-promotion · 1 old, 1 new, 1 healthy \(a group of 1\); canaries not promoted/);
    expect(f).toContain('2 at a time, 1 extra, healthy for 1s, 1 canary; spec h1 → h2');
    expect(f).toMatch(/TASK\s+STATE\s+STARTED\s+HEALTHY AT\s+NOTE/);
    expect(f).toMatch(/farm\/render\/1\s+healthy\s+2026-01-01 00:00:21Z\s+2026-01-01 00:00:23Z\s+canary/);
    expect(f).toMatch(/⏎\s+its tasks/);
    expect(f.split('\n').length).toBeLessThanOrEqual(29);
    await press('j');
    expect(frame()).toMatch(/web\/api\/4\s+healthy\s+2026-01-01 00:00:11Z\s+2026-01-01 00:00:13Z/);
    expect(frame()).toMatch(/web\/api\/0\s+pending\s+2026-01-01 00:00:14Z\s+-/);
    expect(frame()).toContain('started 2026-01-01 00:00:10Z by local:ops');
    await press('j');
    expect(frame()).toMatch(/batch\/tick\/0\s+failed\s+.*unhealthy: 3 failed checks/);
    // a filter, then Enter: the tasks of the group it rolls
    await press('/', 'w', 'e', 'b', '\r');
    expect(frame()).toContain('1/1');
    await press('\r');
    expect(frame()).toContain('3 Tasks');
    expect(frame()).toContain('web/api/10');
    expect(frame()).not.toContain('farm/render/0');
  });

  test('a crash-looping task shows as crash-loop with its next restart, as `factory status` says it', async () => {
    const { press, frame } = mount({ columns: 160, source: new MemoryStateSource(sampleStateWithDeployments(), NOW) });
    await press('3');
    const row = frame().split('\n').find((l) => l.includes(CRASHY.task)) ?? '';
    expect(row).toMatch(/web\/crash\/0\s+crash\s+acme\s+h1\s+process\s+crash-loop\s+-\s+-\s+-\s+exit 1; restart 4 at 00:00:34Z/);
    expect(frame().split('\n').find((l) => l.includes('web/api/0 ')) ?? '').toMatch(/running\s+-\s+healthy\s+-\s+2 restarts/);
    await press('/', 'c', 'r', 'a', 's', 'h', '-', 'l', '\r', '\r');
    expect(frame()).toContain('1/1');
    expect(frame()).toMatch(/state crash-loop \(exited\)/);
    expect(frame()).toContain('exit 1; restart 4 at 00:00:34Z (in 4s)');
  });
});
