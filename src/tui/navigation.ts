/**
 * The dashboard's interaction as plain data: the UI state (view, cursors, filter, scope, overlays)
 * and one reducer from a key press to the next UI state plus an effect for the container to run
 * (quit, an action after confirmation, following a task's logs). No React, no terminal.
 */
import { isVmDriver } from '../protocol/drivers.js';
import type { DeploymentView } from './deployments-model.js';
import type { JobView } from './jobs-model.js';
import type { AgentRow, OverviewLine, Scope, TaskRow } from './model.js';

/** View is one of the dashboard's screens. */
export type View = 'overview' | 'agents' | 'tasks' | 'events' | 'jobs' | 'deployments';

/** VIEWS lists the views in tab order (keys 1–6). */
export const VIEWS: readonly View[] = ['overview', 'agents', 'tasks', 'events', 'jobs', 'deployments'];

/** ActionKind is an operator action that needs a confirmation. */
export type ActionKind = 'restart' | 'drain' | 'undrain' | 'vm-start' | 'vm-stop' | 'vm-reboot' | 'job-run' | 'job-suspend' | 'job-resume';

/** PendingAction is an action waiting for `y`: what, on which task, agent or job, and the question asked. */
export interface PendingAction {
  kind: ActionKind;
  target: string;
  prompt: string;
}

/** UiState is everything the operator changed by pressing keys. */
export interface UiState {
  view: View;
  /** cursor is the selected row per view (an index into that view's filtered rows). */
  cursor: Record<View, number>;
  /** top is the first row shown per view (the virtual window's start). */
  top: Record<View, number>;
  filter: string;
  editingFilter: boolean;
  scope: Scope;
  /** scopeFrom is the view a drill-in came from, for Esc. */
  scopeFrom?: View;
  help: boolean;
  detail: boolean;
  confirm?: PendingAction;
  /** logsTask is the task whose logs are shown (and followed). */
  logsTask?: string;
}

/** Key is the subset of ink's key description the reducer reads. */
export interface Key {
  upArrow?: boolean;
  downArrow?: boolean;
  leftArrow?: boolean;
  rightArrow?: boolean;
  pageUp?: boolean;
  pageDown?: boolean;
  home?: boolean;
  end?: boolean;
  return?: boolean;
  escape?: boolean;
  tab?: boolean;
  shift?: boolean;
  backspace?: boolean;
  delete?: boolean;
  ctrl?: boolean;
  meta?: boolean;
}

/** KeyContext is what the reducer needs to know about the rows on screen. */
export interface KeyContext {
  /** count is how many rows the current view lists (after scope and filter). */
  count: number;
  /** pageSize is how many rows fit on screen. */
  pageSize: number;
  selectedOverview?: OverviewLine;
  selectedAgent?: AgentRow;
  selectedTask?: TaskRow;
  selectedEvent?: { task?: string; agent?: string; job?: string; deployment?: string };
  selectedJob?: JobView;
  selectedDeployment?: DeploymentView;
  /** vmActions is false when this build has no VM power control. */
  vmActions: boolean;
}

/** Effect is what the container must do after a key: quit, run a confirmed action, show a message. */
export type Effect = { kind: 'quit' } | { kind: 'run'; action: PendingAction } | { kind: 'message'; text: string };

/** VM_UNAVAILABLE explains why VM power actions are not offered. */
export const VM_UNAVAILABLE = 'VM power actions are unavailable: this build has no VM control (factory vm start|stop|reboot)';

/** initialUi is the UI state at start: the overview, nothing selected beyond the first row. */
export function initialUi(view: View = 'overview'): UiState {
  return {
    view,
    cursor: { overview: 0, agents: 0, tasks: 0, events: 0, jobs: 0, deployments: 0 },
    top: { overview: 0, agents: 0, tasks: 0, events: 0, jobs: 0, deployments: 0 },
    filter: '',
    editingFilter: false,
    scope: {},
    help: false,
    detail: false,
  };
}

/** clampCursor keeps a cursor inside [0, count). */
export function clampCursor(cursor: number, count: number): number {
  if (count <= 0) return 0;
  return Math.min(Math.max(0, cursor), count - 1);
}

/** scrollTop returns the first row to show so that the cursor is visible, moving the window as little as possible. */
export function scrollTop(top: number, cursor: number, height: number, count: number): number {
  if (height <= 0 || count <= height) return 0;
  let t = top;
  if (cursor < t) t = cursor;
  else if (cursor >= t + height) t = cursor - height + 1;
  return Math.min(Math.max(0, t), count - height);
}

function withCursor(ui: UiState, cursor: number, ctx: KeyContext): UiState {
  const c = clampCursor(cursor, ctx.count);
  return {
    ...ui,
    cursor: { ...ui.cursor, [ui.view]: c },
    top: { ...ui.top, [ui.view]: scrollTop(ui.top[ui.view], c, ctx.pageSize, ctx.count) },
  };
}

function switchView(ui: UiState, view: View): UiState {
  return { ...ui, view, detail: false, editingFilter: false };
}

function ask(ui: UiState, action: PendingAction): { ui: UiState } {
  return { ui: { ...ui, confirm: action } };
}

function vmAction(ui: UiState, ctx: KeyContext, kind: 'vm-start' | 'vm-stop' | 'vm-reboot'): { ui: UiState; effect?: Effect } {
  const t = ctx.selectedTask;
  if (ui.view !== 'tasks' || !t) return { ui, effect: { kind: 'message', text: 'select a VM task in the tasks view first' } };
  if (!isVmDriver(t.driver)) return { ui, effect: { kind: 'message', text: `${t.task} is not a VM (driver ${t.driver})` } };
  if (!ctx.vmActions) return { ui, effect: { kind: 'message', text: VM_UNAVAILABLE } };
  const verb = kind === 'vm-start' ? 'Start' : kind === 'vm-stop' ? 'Stop' : 'Reboot';
  return ask(ui, { kind, target: t.task, prompt: `${verb} VM ${t.task} on ${t.agent}?` });
}

/** CONCURRENCY_NOTE says what a job's concurrency does to a run now while others are going. */
const CONCURRENCY_NOTE: Record<string, string> = {
  forbid: ' A run is going: its concurrency (forbid) refuses another.',
  replace: ' Its run going is stopped (concurrency replace).',
};

/** jobAction asks to run the selected job now, or to suspend (resume, when suspended) it. */
function jobAction(ui: UiState, ctx: KeyContext, kind: 'job-run' | 'job-suspend'): { ui: UiState; effect?: Effect } {
  const j = ctx.selectedJob;
  if (!j) return { ui, effect: { kind: 'message', text: 'no job selected (jobs come from applied plans with a jobs: section)' } };
  if (kind === 'job-run') {
    return ask(ui, { kind, target: j.id, prompt: `Run ${j.id} now, outside its schedule?${j.running ? (CONCURRENCY_NOTE[j.concurrency] ?? '') : ''}` });
  }
  if (j.suspended) return ask(ui, { kind: 'job-resume', target: j.id, prompt: `Resume ${j.id} (its next slots run again)?` });
  return ask(ui, { kind, target: j.id, prompt: `Suspend ${j.id}? Its slots are skipped until it is resumed.` });
}

/** reduceKey turns one key press into the next UI state and, maybe, an effect. */
export function reduceKey(ui: UiState, input: string, key: Key, ctx: KeyContext): { ui: UiState; effect?: Effect } {
  if (key.ctrl && input === 'c') return { ui, effect: { kind: 'quit' } };

  if (ui.confirm) {
    if (input === 'y' || input === 'Y') return { ui: { ...ui, confirm: undefined }, effect: { kind: 'run', action: ui.confirm } };
    if (input === 'n' || input === 'N' || key.escape || input === 'q') return { ui: { ...ui, confirm: undefined }, effect: { kind: 'message', text: 'cancelled' } };
    return { ui };
  }

  if (ui.editingFilter) {
    if (key.escape) return { ui: withCursor({ ...ui, editingFilter: false, filter: '' }, 0, ctx) };
    if (key.return) return { ui: { ...ui, editingFilter: false } };
    if (key.backspace || key.delete) return { ui: resetCursors({ ...ui, filter: ui.filter.slice(0, -1) }) };
    if (key.upArrow || key.downArrow || key.tab || key.ctrl || key.meta) return { ui };
    // eslint-disable-next-line no-control-regex -- typed text, not control keys, goes into the filter
    if (input && !/[\u0000-\u001f]/.test(input)) return { ui: resetCursors({ ...ui, filter: ui.filter + input }) };
    return { ui };
  }

  if (ui.logsTask) {
    if (key.escape || input === 'l') return { ui: { ...ui, logsTask: undefined } };
    if (input === 'q') return { ui, effect: { kind: 'quit' } };
    return { ui };
  }

  if (ui.help) {
    if (key.escape || input === '?' || key.return) return { ui: { ...ui, help: false } };
    if (input === 'q') return { ui, effect: { kind: 'quit' } };
    return { ui };
  }

  if (input === 'q') return { ui, effect: { kind: 'quit' } };
  if (input === '?') return { ui: { ...ui, help: true } };
  if (input === '/') return { ui: { ...ui, editingFilter: true } };

  const cursor = ui.cursor[ui.view];
  if (key.upArrow || input === 'k') return { ui: withCursor(ui, cursor - 1, ctx) };
  if (key.downArrow || input === 'j') return { ui: withCursor(ui, cursor + 1, ctx) };
  if (key.pageUp || (key.ctrl && input === 'b')) return { ui: withCursor(ui, cursor - Math.max(1, ctx.pageSize), ctx) };
  if (key.pageDown || (key.ctrl && input === 'f') || input === ' ') return { ui: withCursor(ui, cursor + Math.max(1, ctx.pageSize), ctx) };
  if (key.home || input === 'g') return { ui: withCursor(ui, 0, ctx) };
  if (key.end || input === 'G') return { ui: withCursor(ui, ctx.count - 1, ctx) };

  const idx = VIEWS.indexOf(ui.view);
  if (key.tab || key.rightArrow) return { ui: switchView(ui, VIEWS[(idx + (key.shift ? VIEWS.length - 1 : 1)) % VIEWS.length]!) };
  if (key.leftArrow) return { ui: switchView(ui, VIEWS[(idx + VIEWS.length - 1) % VIEWS.length]!) };
  if (/^[1-9]$/.test(input) && Number(input) <= VIEWS.length) return { ui: switchView(ui, VIEWS[Number(input) - 1]!) };

  if (key.escape) {
    if (ui.detail) return { ui: { ...ui, detail: false } };
    if (ui.filter) return { ui: resetCursors({ ...ui, filter: '' }) };
    if (ui.scope.idc || ui.scope.cluster || ui.scope.agent) {
      return { ui: resetCursors({ ...ui, scope: {}, scopeFrom: undefined, view: ui.scopeFrom ?? ui.view, detail: false }) };
    }
    return { ui };
  }

  if (key.return) return drillIn(ui, ctx);

  if (input === 'l') {
    if (ui.view !== 'tasks' || !ctx.selectedTask) return { ui, effect: { kind: 'message', text: 'select a task in the tasks view to see its logs' } };
    return { ui: { ...ui, logsTask: ctx.selectedTask.task } };
  }
  if (ui.view === 'jobs' && (input === 'r' || input === 's')) return jobAction(ui, ctx, input === 'r' ? 'job-run' : 'job-suspend');
  if (input === 'r') {
    const t = ctx.selectedTask;
    if (ui.view !== 'tasks' || !t) return { ui, effect: { kind: 'message', text: 'select a task in the tasks view to restart it' } };
    return ask(ui, { kind: 'restart', target: t.task, prompt: `Restart ${t.task} on ${t.agent}?` });
  }
  if (input === 'd') {
    const a = ctx.selectedAgent;
    if (ui.view !== 'agents' || !a) return { ui, effect: { kind: 'message', text: 'select an agent in the agents view to drain it' } };
    if (a.draining) return ask(ui, { kind: 'undrain', target: a.name, prompt: `Stop draining ${a.name} (accept new tasks again)?` });
    return ask(ui, { kind: 'drain', target: a.name, prompt: `Drain ${a.name}? Its ${a.tasks} task${a.tasks === 1 ? '' : 's'} move elsewhere; new tasks avoid it.` });
  }
  if (input === 's') return vmAction(ui, ctx, 'vm-start');
  if (input === 'x') return vmAction(ui, ctx, 'vm-stop');
  if (input === 'b') return vmAction(ui, ctx, 'vm-reboot');
  return { ui };
}

function resetCursors(ui: UiState): UiState {
  return { ...ui, cursor: { ...ui.cursor, [ui.view]: 0 }, top: { ...ui.top, [ui.view]: 0 } };
}

function scoped(ui: UiState, view: View, scope: Scope): UiState {
  return {
    ...ui,
    view,
    scope,
    scopeFrom: ui.view,
    filter: '',
    detail: false,
    cursor: { ...ui.cursor, [view]: 0 },
    top: { ...ui.top, [view]: 0 },
  };
}

function drillIn(ui: UiState, ctx: KeyContext): { ui: UiState; effect?: Effect } {
  switch (ui.view) {
    case 'overview': {
      const o = ctx.selectedOverview;
      if (!o) return { ui };
      return { ui: scoped(ui, 'agents', o.kind === 'idc' ? { idc: o.idc } : { idc: o.idc, cluster: o.cluster }) };
    }
    case 'agents': {
      const a = ctx.selectedAgent;
      if (!a) return { ui };
      return { ui: scoped(ui, 'tasks', { agent: a.name }) };
    }
    case 'tasks':
      return ctx.selectedTask ? { ui: { ...ui, detail: !ui.detail } } : { ui };
    case 'events': {
      const e = ctx.selectedEvent;
      if (e?.deployment) return { ui: { ...scoped(ui, 'deployments', {}), filter: e.deployment } };
      if (e?.task) return { ui: { ...scoped(ui, 'tasks', {}), filter: e.task } };
      if (e?.job) return { ui: { ...scoped(ui, 'jobs', {}), filter: e.job } };
      if (e?.agent) return { ui: { ...scoped(ui, 'agents', {}), filter: e.agent } };
      return { ui };
    }
    case 'jobs':
      return { ui };
    case 'deployments': {
      // a deployment → the tasks of the group it rolls
      const d = ctx.selectedDeployment;
      if (!d) return { ui };
      return { ui: { ...scoped(ui, 'tasks', {}), filter: `plan:${d.plan} group:${d.group}` } };
    }
  }
}
