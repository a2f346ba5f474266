import { describe, expect, test } from 'vitest';
import { deploymentsOf } from '../../src/tui/deployments-model.js';
import { jobsOfTables } from '../../src/tui/jobs-model.js';
import { buildModel, tasksInScope } from '../../src/tui/model.js';
import { initialUi, reduceKey, scrollTop, VIEWS, VM_UNAVAILABLE, type KeyContext } from '../../src/tui/navigation.js';
import { sampleDeployments, sampleJobTables, sampleState } from './fixtures.js';

const m = buildModel(sampleState());
const { jobs } = jobsOfTables(sampleJobTables());
const jobNamed = (id: string) => jobs.find((j) => j.id === id)!;
const ctx = (over: Partial<KeyContext> = {}): KeyContext => ({ count: 10, pageSize: 4, vmActions: true, ...over });

describe('reduceKey', () => {
  test('j/k and arrows move within bounds and the window follows the cursor', () => {
    let ui = initialUi('tasks');
    for (let i = 0; i < 6; i++) ui = reduceKey(ui, 'j', {}, ctx()).ui;
    expect(ui.cursor.tasks).toBe(6);
    expect(ui.top.tasks).toBe(3);
    ui = reduceKey(ui, '', { upArrow: true }, ctx()).ui;
    expect(ui.cursor.tasks).toBe(5);
    ui = reduceKey(ui, 'G', {}, ctx()).ui;
    expect(ui.cursor.tasks).toBe(9);
    ui = reduceKey(ui, 'j', {}, ctx()).ui;
    expect(ui.cursor.tasks).toBe(9);
    ui = reduceKey(ui, '', { pageUp: true }, ctx()).ui;
    expect(ui.cursor.tasks).toBe(5);
    expect(scrollTop(0, 99, 10, 100)).toBe(90);
    expect(scrollTop(50, 10, 10, 100)).toBe(10);
  });

  test('Enter drills from a cluster to its agents to an agent\'s tasks; Esc goes back', () => {
    let ui = initialUi();
    ui = reduceKey(ui, '', { return: true }, ctx({ selectedOverview: m.overview[1] })).ui;
    expect(ui.view).toBe('agents');
    expect(ui.scope).toEqual({ idc: 'bj1', cluster: 'bj1-a' });
    ui = reduceKey(ui, '', { return: true }, ctx({ selectedAgent: m.agents.at(0) })).ui;
    expect(ui.view).toBe('tasks');
    expect(ui.scope).toEqual({ agent: 'h1' });
    ui = reduceKey(ui, '', { return: true }, ctx({ selectedTask: m.tasks.at(0) })).ui;
    expect(ui.detail).toBe(true);
    ui = reduceKey(ui, '', { escape: true }, ctx()).ui;
    expect(ui.detail).toBe(false);
    ui = reduceKey(ui, '', { escape: true }, ctx()).ui;
    expect(ui.scope).toEqual({});
    expect(ui.view).toBe('agents');
  });

  test('/ edits the filter; typed q is text, not quit; Esc clears it', () => {
    let ui = reduceKey(initialUi('tasks'), '/', {}, ctx()).ui;
    expect(ui.editingFilter).toBe(true);
    for (const ch of 'q1') ui = reduceKey(ui, ch, {}, ctx()).ui;
    expect(ui.filter).toBe('q1');
    ui = reduceKey(ui, '', { backspace: true }, ctx()).ui;
    expect(ui.filter).toBe('q');
    const kept = reduceKey(ui, '', { return: true }, ctx()).ui;
    expect(kept).toMatchObject({ editingFilter: false, filter: 'q' });
    expect(reduceKey(ui, '', { escape: true }, ctx()).ui).toMatchObject({ editingFilter: false, filter: '' });
  });

  test('actions ask first: y runs, n cancels', () => {
    const task = m.tasks.find((t) => t.task === 'web/api/2')!;
    const asked = reduceKey(initialUi('tasks'), 'r', {}, ctx({ selectedTask: task })).ui;
    expect(asked.confirm).toMatchObject({ kind: 'restart', target: 'web/api/2' });
    const yes = reduceKey(asked, 'y', {}, ctx());
    expect(yes.effect).toEqual({ kind: 'run', action: asked.confirm });
    expect(yes.ui.confirm).toBeUndefined();
    expect(reduceKey(asked, 'n', {}, ctx()).effect).toEqual({ kind: 'message', text: 'cancelled' });
    const h2 = m.agents.find((a) => a.name === 'h2')!;
    expect(reduceKey(initialUi('agents'), 'd', {}, ctx({ selectedAgent: h2 })).ui.confirm?.kind).toBe('undrain');
    expect(reduceKey(initialUi('agents'), 'd', {}, ctx({ selectedAgent: m.agents.at(0) })).ui.confirm?.kind).toBe('drain');
  });

  test('VM actions: only for VMs, and said to be unavailable when the build has none', () => {
    const vm = m.tasks.find((t) => t.driver === 'libvirt')!;
    expect(reduceKey(initialUi('tasks'), 'b', {}, ctx({ selectedTask: vm })).ui.confirm).toMatchObject({ kind: 'vm-reboot', target: vm.task });
    expect(reduceKey(initialUi('tasks'), 'b', {}, ctx({ selectedTask: vm, vmActions: false })).effect).toEqual({ kind: 'message', text: VM_UNAVAILABLE });
    expect(reduceKey(initialUi('tasks'), 's', {}, ctx({ selectedTask: m.tasks.at(0) })).effect?.kind).toBe('message');
  });

  test('q quits, ? opens help, l opens logs of the selected task', () => {
    expect(reduceKey(initialUi(), 'q', {}, ctx()).effect).toEqual({ kind: 'quit' });
    expect(reduceKey(initialUi(), '?', {}, ctx()).ui.help).toBe(true);
    expect(reduceKey(initialUi('tasks'), 'l', {}, ctx({ selectedTask: m.tasks.at(0) })).ui.logsTask).toBe(m.tasks.at(0)!.task);
    expect(reduceKey(initialUi('agents'), 'l', {}, ctx()).effect?.kind).toBe('message');
  });

  test('5 and tab reach the jobs view, 6 and tab the deployments view; 7 is no view', () => {
    expect(VIEWS).toEqual(['overview', 'agents', 'tasks', 'events', 'jobs', 'deployments']);
    expect(reduceKey(initialUi(), '5', {}, ctx()).ui.view).toBe('jobs');
    expect(reduceKey(initialUi(), '6', {}, ctx()).ui.view).toBe('deployments');
    expect(reduceKey(initialUi('events'), '', { tab: true }, ctx()).ui.view).toBe('jobs');
    expect(reduceKey(initialUi('jobs'), '', { tab: true }, ctx()).ui.view).toBe('deployments');
    expect(reduceKey(initialUi('deployments'), '', { tab: true }, ctx()).ui.view).toBe('overview');
    expect(reduceKey(initialUi('overview'), '', { leftArrow: true }, ctx()).ui.view).toBe('deployments');
    expect(reduceKey(initialUi('tasks'), '7', {}, ctx()).ui.view).toBe('tasks');
    let ui = reduceKey(initialUi(), '5', {}, ctx()).ui;
    ui = reduceKey(ui, 'j', {}, ctx({ count: 4 })).ui;
    expect(ui.cursor.jobs).toBe(1);
    expect(ui.cursor.tasks).toBe(0);
  });

  test('in the jobs view r asks to run the job now and s to suspend or resume it; elsewhere they keep their meaning', () => {
    const nightly = jobNamed('etl/nightly');
    const run = reduceKey(initialUi('jobs'), 'r', {}, ctx({ selectedJob: nightly }));
    expect(run.ui.confirm).toEqual({ kind: 'job-run', target: 'etl/nightly', prompt: 'Run etl/nightly now, outside its schedule?' });
    expect(reduceKey(run.ui, 'y', {}, ctx()).effect).toEqual({ kind: 'run', action: run.ui.confirm });
    expect(reduceKey(initialUi('jobs'), 's', {}, ctx({ selectedJob: nightly })).ui.confirm).toMatchObject({ kind: 'job-suspend', target: 'etl/nightly' });
    expect(reduceKey(initialUi('jobs'), 's', {}, ctx({ selectedJob: jobNamed('web/backup') })).ui.confirm).toMatchObject({ kind: 'job-resume', target: 'web/backup' });
    // a run going: the prompt says what the job's concurrency does to another
    const forbid = { ...jobNamed('web/tick'), concurrency: 'forbid' };
    expect(reduceKey(initialUi('jobs'), 'r', {}, ctx({ selectedJob: forbid })).ui.confirm?.prompt).toMatch(/its concurrency \(forbid\) refuses another/);
    const replace = { ...jobNamed('web/tick'), concurrency: 'replace' };
    expect(reduceKey(initialUi('jobs'), 'r', {}, ctx({ selectedJob: replace })).ui.confirm?.prompt).toMatch(/run going is stopped/);
    expect(reduceKey(initialUi('jobs'), 'r', {}, ctx()).effect).toMatchObject({ kind: 'message', text: expect.stringMatching(/no job selected/) });
    // elsewhere: restart a task, start a VM, as before
    const vm = m.tasks.find((t) => t.driver === 'libvirt')!;
    expect(reduceKey(initialUi('tasks'), 'r', {}, ctx({ selectedTask: vm, selectedJob: nightly })).ui.confirm?.kind).toBe('restart');
    expect(reduceKey(initialUi('tasks'), 's', {}, ctx({ selectedTask: vm, selectedJob: nightly })).ui.confirm?.kind).toBe('vm-start');
  });

  test('Enter on a job event opens the jobs view filtered to its job (a task event still opens the task)', () => {
    const ui = reduceKey(initialUi('events'), '', { return: true }, ctx({ selectedEvent: { job: 'etl/nightly', agent: 'h1' } })).ui;
    expect(ui).toMatchObject({ view: 'jobs', filter: 'etl/nightly', scopeFrom: 'events' });
    expect(reduceKey(ui, '', { escape: true }, ctx()).ui.filter).toBe('');
    expect(reduceKey(initialUi('events'), '', { return: true }, ctx({ selectedEvent: { task: 'web/api/2', agent: 'h1' } })).ui).toMatchObject({ view: 'tasks', filter: 'web/api/2' });
    expect(reduceKey(initialUi('events'), '', { return: true }, ctx({ selectedEvent: { agent: 'h1' } })).ui).toMatchObject({ view: 'agents', filter: 'h1' });
    expect(reduceKey(initialUi('jobs'), '', { return: true }, ctx({ selectedJob: jobNamed('etl/nightly') })).ui.view).toBe('jobs');
  });

  test('Enter on a deployment opens the tasks of its group; on a deployment event, the deployment; Esc clears the filter', () => {
    const [canary] = deploymentsOf(Object.values(sampleDeployments().deployments));
    const ui = reduceKey(initialUi('deployments'), '', { return: true }, ctx({ selectedDeployment: canary })).ui;
    expect(ui).toMatchObject({ view: 'tasks', filter: 'plan:farm group:render', scopeFrom: 'deployments' });
    expect(tasksInScope(m, ui.scope, ui.filter).map((t) => t.task)).toEqual(['farm/render/0']);
    expect(reduceKey(ui, '', { escape: true }, ctx()).ui.filter).toBe('');
    expect(reduceKey(initialUi('deployments'), '', { return: true }, ctx()).ui.view).toBe('deployments');
    const fromEvent = reduceKey(initialUi('events'), '', { return: true }, ctx({ selectedEvent: { deployment: 'dep-0b0b0b0b0b', task: 'farm/render/1' } })).ui;
    expect(fromEvent).toMatchObject({ view: 'deployments', filter: 'dep-0b0b0b0b0b', scopeFrom: 'events' });
  });
});
