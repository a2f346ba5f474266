/**
 * The dashboard as the operator sees it: ink-testing-library renders <Dashboard> from an in-memory
 * state, keys are typed into its stdin, and the frames are checked.
 */
import { cleanup, render } from 'ink-testing-library';
import { afterEach, describe, expect, test, vi } from 'vitest';
import type { DashboardActions } from '../../src/tui/actions.js';
import { Dashboard } from '../../src/tui/Dashboard.js';
import { MemoryStateSource } from '../../src/tui/state-source.js';
import { sampleState, task } from './fixtures.js';

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

  test('80×24 and 40×12: degrades without breaking (frame fits, key columns stay)', async () => {
    for (const [columns, rows] of [
      [80, 24],
      [40, 12],
    ] as const) {
      const { press, frame, app } = mount({ columns, rows });
      await press('3');
      const lines = frame().split('\n');
      expect(lines.length).toBeLessThanOrEqual(rows - 1);
      for (const l of lines) expect(l.replace(/\u001b\[[0-9;]*m/g, '').length).toBeLessThanOrEqual(columns);
      expect(frame()).toContain('farm/render/0');
      app.unmount();
    }
  });
});
