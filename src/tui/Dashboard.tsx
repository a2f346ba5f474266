/**
 * Dashboard is the one stateful component of `factory dashboard`: it subscribes to the state
 * source, builds the model once per state version, owns the UI state (reduced by navigation.ts),
 * runs confirmed actions and follows logs, and hands only the visible rows to presentational
 * components. Every frame fits in rows − 1 lines so ink never clears the screen (no flicker).
 */
import { Box, useApp, useInput, useStdout } from 'ink';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { emptyState } from './empty-state.js';
import type { DashboardActions } from './actions.js';
import { AgentsTable } from './components/AgentsTable.js';
import { DeploymentTasks, deploymentTasksHeight } from './components/DeploymentTasks.js';
import { DeploymentsTable } from './components/DeploymentsTable.js';
import { EventsPane } from './components/EventsPane.js';
import { HeaderBar } from './components/HeaderBar.js';
import { HelpBar } from './components/HelpBar.js';
import { HelpOverlay } from './components/HelpOverlay.js';
import { JobRuns, jobRunsHeight } from './components/JobRuns.js';
import { JobsTable } from './components/JobsTable.js';
import { LogsPane } from './components/LogsPane.js';
import { OverviewPane } from './components/OverviewPane.js';
import { StatusLine } from './components/StatusLine.js';
import { TaskDetail, TASK_DETAIL_HEIGHT } from './components/TaskDetail.js';
import { TasksTable } from './components/TasksTable.js';
import { deploymentsMatching, deploymentsTotals, NO_DEPLOYMENTS } from './deployments-model.js';
import { jobsMatching, jobsTotals, NO_JOBS } from './jobs-model.js';
import { LogBuffer } from './log-buffer.js';
import { agentsInScope, buildModel, eventsMatching, filterRows, modelOf, tasksInScope, type DeclaredAgent } from './model.js';
import { clampCursor, initialUi, reduceKey, scrollTop, type Effect, type KeyContext, type PendingAction, type UiState, type View } from './navigation.js';
import type { StateSnapshot, StateSource } from './state-source.js';

/** DashboardProps wire the dashboard to its state, its actions and its terminal. */
export interface DashboardProps {
  source: StateSource;
  actions: DashboardActions;
  /** declared are the inventory's agents, shown even before the state knows them. */
  declared?: DeclaredAgent[];
  /** stateLabel names the state folder in the header. */
  stateLabel: string;
  /** size overrides the terminal's size (tests, benchmark). */
  size?: { columns: number; rows: number };
  /** now is the clock for heartbeat ages (tests freeze it). */
  now?: () => number;
  /** tickMs re-renders ages this often (0: never). */
  tickMs?: number;
  initialView?: View;
  /** ascii draws bars with # and . for terminals without block characters. */
  ascii?: boolean;
  /** onQuit runs when the operator quits (after the app exits). */
  onQuit?: () => void;
}

function useTerminalSize(override?: { columns: number; rows: number }): { columns: number; rows: number } {
  const { stdout } = useStdout();
  const read = () => ({ columns: override?.columns ?? stdout.columns ?? 80, rows: override?.rows ?? stdout.rows ?? 24 });
  const [size, setSize] = useState(read);
  useEffect(() => {
    if (override) return;
    const onResize = () => setSize(read());
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  });
  return override ?? size;
}

/** Dashboard is the container: state subscription, UI state, actions, logs; presentational children. */
export function Dashboard(props: DashboardProps) {
  const { source, actions, declared, stateLabel, ascii } = props;
  const app = useApp();
  const { columns, rows } = useTerminalSize(props.size);
  const clock = props.now ?? Date.now;
  const [snap, setSnap] = useState<StateSnapshot>(() => source.current());
  const [ui, setUi] = useState<UiState>(() => initialUi(props.initialView));
  const [now, setNow] = useState(clock);
  const [message, setMessage] = useState<string | undefined>();
  const [busy, setBusy] = useState<string | undefined>();
  const [logLines, setLogLines] = useState<string[]>([]);
  const [logNote, setLogNote] = useState<string | undefined>();

  useEffect(() => source.subscribe(setSnap), [source]);
  useEffect(() => {
    const ms = props.tickMs ?? 5000;
    if (ms <= 0) return;
    const t = setInterval(() => setNow(clock()), ms);
    return () => clearInterval(t);
  }, [props.tickMs, clock]);

  // The model is built once per state version (by the state worker for the file watcher); keys and ticks reuse it.
  const model = useMemo(() => (snap.core ? modelOf(snap.core) : buildModel(snap.data ?? emptyState(), declared)), [snap.core, snap.data, declared]);
  const overview = useMemo(() => filterRows(model.overview, ui.view === 'overview' ? ui.filter : ''), [model, ui.view, ui.filter]);
  const agents = useMemo(() => agentsInScope(model, ui.scope, ui.view === 'agents' ? ui.filter : ''), [model, ui.scope, ui.view, ui.filter]);
  const tasks = useMemo(() => tasksInScope(model, ui.scope, ui.view === 'tasks' ? ui.filter : ''), [model, ui.scope, ui.view, ui.filter]);
  const events = useMemo(() => eventsMatching(model, ui.view === 'events' ? ui.filter : ''), [model, ui.view, ui.filter]);
  const jobsData = snap.jobs ?? NO_JOBS;
  const jobs = useMemo(() => jobsMatching(jobsData.jobs, ui.view === 'jobs' ? ui.filter : ''), [jobsData, ui.view, ui.filter]);
  const jobCounts = useMemo(() => jobsTotals(jobsData.jobs), [jobsData]);
  const deploymentsData = snap.deployments ?? NO_DEPLOYMENTS;
  const deployments = useMemo(() => deploymentsMatching(deploymentsData, ui.view === 'deployments' ? ui.filter : ''), [deploymentsData, ui.view, ui.filter]);
  const deploymentCounts = useMemo(() => deploymentsTotals(deploymentsData), [deploymentsData]);

  // Layout: header (2) + body + status line (1) + help bar (1) = rows − 1.
  const width = Math.max(20, columns);
  const bodyHeight = Math.max(3, rows - 1 - 4);
  const showEventsUnderOverview = ui.view === 'overview' && bodyHeight >= 14;
  const eventsPaneHeight = showEventsUnderOverview ? Math.min(7, Math.floor(bodyHeight / 3)) : 0;
  const detailOpen = ui.view === 'tasks' && ui.detail;
  // the jobs view keeps the selected job's runs under its table,
  // and the deployments view the selected deployment's progress
  const paneHeight = ui.view === 'jobs' ? jobRunsHeight(bodyHeight) : ui.view === 'deployments' ? deploymentTasksHeight(bodyHeight) : 0;
  const listHeight =
    ui.view === 'overview' ? bodyHeight - eventsPaneHeight : ui.view === 'events' ? bodyHeight : bodyHeight - 1 - (detailOpen ? TASK_DETAIL_HEIGHT : 0) - paneHeight;

  const count =
    ui.view === 'overview'
      ? overview.length
      : ui.view === 'agents'
        ? agents.length
        : ui.view === 'tasks'
          ? tasks.length
          : ui.view === 'jobs'
            ? jobs.length
            : ui.view === 'deployments'
              ? deployments.length
              : events.length;
  const cursor = clampCursor(ui.cursor[ui.view], count);
  const top = scrollTop(ui.top[ui.view], cursor, Math.max(1, listHeight), count);

  const ctx: KeyContext = {
    count,
    pageSize: Math.max(1, listHeight),
    selectedOverview: ui.view === 'overview' ? overview[cursor] : undefined,
    selectedAgent: ui.view === 'agents' ? agents.at(cursor) : undefined,
    selectedTask: ui.view === 'tasks' ? tasks.at(cursor) : undefined,
    selectedEvent: ui.view === 'events' ? events[cursor] : undefined,
    selectedJob: ui.view === 'jobs' ? jobs[cursor] : undefined,
    selectedDeployment: ui.view === 'deployments' ? deployments[cursor] : undefined,
    vmActions: Boolean(actions.vm),
  };

  const run = useCallback(
    (action: PendingAction) => {
      setBusy(action.prompt.replace(/\?.*$/, ''));
      const done = (text: string) => {
        setBusy(undefined);
        setMessage(text);
      };
      const fail = (err: unknown) => done(`${action.kind} failed: ${(err as Error)?.message ?? String(err)}`);
      const vm = actions.vm;
      let p: Promise<string>;
      switch (action.kind) {
        case 'restart':
          p = actions.restartTask(action.target);
          break;
        case 'drain':
        case 'undrain':
          p = actions.drain(action.target, action.kind === 'undrain', (line) => setBusy(line));
          break;
        case 'job-run':
          p = actions.runJob(action.target);
          break;
        case 'job-suspend':
        case 'job-resume':
          p = actions.suspendJob(action.target, action.kind === 'job-suspend');
          break;
        default:
          p = vm ? vm(action.target, action.kind === 'vm-start' ? 'start' : action.kind === 'vm-stop' ? 'stop' : 'reboot') : Promise.reject(new Error('VM actions are unavailable'));
      }
      p.then(done, fail);
    },
    [actions],
  );

  const uiRef = useRef(ui);
  uiRef.current = ui;
  useInput((input, key) => {
    const { ui: next, effect } = reduceKey(uiRef.current, input, key, ctx);
    uiRef.current = next;
    setUi(next);
    handle(effect);
  });

  function handle(effect: Effect | undefined) {
    if (!effect) {
      if (message && !busy) setMessage(undefined);
      return;
    }
    if (effect.kind === 'quit') {
      app.exit();
      props.onQuit?.();
    } else if (effect.kind === 'message') setMessage(effect.text);
    else if (busy) setMessage(`wait: ${busy}`);
    else run(effect.action);
  }

  // Follow the selected task's logs while the logs pane is open.
  useEffect(() => {
    const task = ui.logsTask;
    if (!task) return;
    const buffer = new LogBuffer(1000);
    const ac = new AbortController();
    setLogLines([]);
    setLogNote(undefined);
    let dirty = false;
    const flush = setInterval(() => {
      if (!dirty) return;
      dirty = false;
      setLogLines(buffer.lines());
    }, 100);
    actions
      .logs(
        task,
        (_stream, chunk) => {
          buffer.push(chunk);
          dirty = true;
        },
        ac.signal,
      )
      .then(
        () => setLogNote(ac.signal.aborted ? undefined : '(ended; Esc closes)'),
        (err: unknown) => setLogNote(`(${(err as Error)?.message ?? String(err)}; Esc closes)`),
      )
      .finally(() => {
        dirty = true;
      });
    return () => {
      ac.abort();
      clearInterval(flush);
    };
  }, [ui.logsTask, actions]);

  const scopeLabel = ui.scope.agent
    ? `on agent ${ui.scope.agent} (Esc back)`
    : ui.scope.cluster
      ? `in ${ui.scope.idc}/${ui.scope.cluster} (Esc back)`
      : ui.scope.idc
        ? `in ${ui.scope.idc} (Esc back)`
        : undefined;
  const position = `${count ? cursor + 1 : 0}/${count}`;
  const mode = ui.confirm ? 'confirm' : ui.editingFilter ? 'filter' : ui.logsTask ? 'logs' : ui.help ? 'help' : undefined;
  const sel = cursor - top;

  let body;
  if (ui.help) body = <HelpOverlay width={width} height={bodyHeight} vmActions={Boolean(actions.vm)} />;
  else if (ui.logsTask) body = <LogsPane task={ui.logsTask} lines={logLines} width={width} height={bodyHeight} note={logNote} />;
  else if (ui.view === 'overview') {
    body = (
      <Box flexDirection="column">
        <Box height={listHeight} flexDirection="column">
          <OverviewPane lines={overview.slice(top, top + listHeight)} selected={sel} width={width} ascii={ascii} />
        </Box>
        {showEventsUnderOverview ? <EventsPane events={model.events.slice(0, eventsPaneHeight - 1)} selected={-1} width={width} title="Recent events" /> : null}
      </Box>
    );
  } else if (ui.view === 'agents') {
    body = <AgentsTable rows={agents.slice(top, top + listHeight)} selected={sel} width={width} now={now} />;
  } else if (ui.view === 'tasks') {
    const selected = tasks.at(cursor);
    body = (
      <Box flexDirection="column">
        <Box height={listHeight + 1} flexDirection="column">
          <TasksTable rows={tasks.slice(top, top + listHeight)} selected={sel} width={width} now={now} />
        </Box>
        {detailOpen && selected ? <TaskDetail task={selected} width={width} now={now} /> : null}
      </Box>
    );
  } else if (ui.view === 'jobs') {
    const selected = jobs[cursor];
    body = (
      <Box flexDirection="column">
        <Box height={listHeight + 1} flexDirection="column">
          <JobsTable rows={jobs.slice(top, top + listHeight)} selected={sel} width={width} />
        </Box>
        <JobRuns job={selected} runs={(selected && jobsData.runs[selected.id]) || []} width={width} height={paneHeight} />
      </Box>
    );
  } else if (ui.view === 'deployments') {
    body = (
      <Box flexDirection="column">
        <Box height={listHeight + 1} flexDirection="column">
          <DeploymentsTable rows={deployments.slice(top, top + listHeight)} selected={sel} width={width} now={now} />
        </Box>
        <DeploymentTasks deployment={deployments[cursor]} width={width} height={paneHeight} />
      </Box>
    );
  } else {
    body = <EventsPane events={events.slice(top, top + listHeight)} selected={sel} width={width} />;
  }

  return (
    <Box flexDirection="column" width={width} height={rows - 1}>
      <HeaderBar view={ui.view} totals={model.totals} jobs={jobCounts} deployments={deploymentCounts} stateLabel={stateLabel} readAt={snap.readAt} width={width} />
      <Box height={bodyHeight} flexDirection="column" overflow="hidden">
        {body}
      </Box>
      <StatusLine
        confirm={ui.confirm}
        editingFilter={ui.editingFilter}
        filter={ui.filter}
        busy={busy}
        message={message}
        error={snap.error}
        position={position}
        scopeLabel={scopeLabel}
      />
      <HelpBar view={ui.view} mode={mode} />
    </Box>
  );
}
