import { Flags } from '@oclif/core';
import { FactoryCommand } from '../cli/base.js';
import { formatBytes, table } from '../cli/render.js';
import { foreignCountText, status, type StatusResult } from '../control/status.js';

/** Status lists agents and tasks as the agents report them now (pid, state, limits). */
export default class Status extends FactoryCommand<typeof Status> {
  static override summary = 'List agents and tasks: agent, driver, pid and state, as the agents report them.';
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --json', '<%= config.bin %> status --cached'];
  static override flags = {
    cached: Flags.boolean({ summary: 'Show the state file as recorded; do not ask the agents.', default: false }),
    events: Flags.integer({ summary: 'How many recent events to show.', default: 10 }),
  };

  protected async execute(): Promise<Omit<StatusResult, 'refreshed' | 'events'> & Partial<StatusResult>> {
    const r = await this.onHost(
      (host) => host.status({ cached: this.flags.cached, events: this.flags.events }),
      () => status({ stateDir: this.flags.state, inventoryPath: this.flags.inventory, cached: this.flags.cached, events: this.flags.events }),
    );
    // a FOREIGN column (tasks other factory states run there) only when some agent has any
    const foreign = r.agents.some((a) => a.foreign?.length);
    const agentRows = r.agents.map((a) => [
      a.name,
      a.idc,
      a.cluster,
      a.state,
      `cpus ${a.resources.cpus} mem ${formatBytes(a.resources.mem)}${a.resources.gpus ? ` gpus ${a.resources.gpus}` : ''}`,
      a.limits ?? '',
      ...(foreign ? [foreignCountText(a.foreign)] : []),
      a.error ?? '',
    ]);
    const taskRows = r.tasks.map((t) => [
      t.task,
      t.agent,
      t.driver,
      t.pid !== undefined ? String(t.pid) : '-',
      `${t.health ? `${t.state} (${t.health})` : t.state}${t.power ? ` [${t.power}]` : ''}`,
      t.limits ?? '',
      t.error ?? (t.signal ? `killed by ${t.signal}` : t.exitCode !== undefined && t.state !== 'running' ? `exit ${t.exitCode}` : ''),
    ]);
    const out = [table(['AGENT', 'IDC', 'CLUSTER', 'STATE', 'RESOURCES', 'LIMITS', ...(foreign ? ['FOREIGN'] : []), 'ERROR'], agentRows), ''];
    out.push(taskRows.length ? table(['TASK', 'AGENT', 'DRIVER', 'PID', 'STATE', 'LIMITS', 'DETAIL'], taskRows) : 'No tasks.');
    if (foreign) {
      const n = r.agents.reduce((sum, a) => sum + (a.foreign?.length ?? 0), 0);
      out.push('', `${n} task${n === 1 ? '' : 's'} of other factory states run${n === 1 ? 's' : ''} on these agents: not this state's (${r.stateId}), never adopted or stopped (status --json lists them).`);
    }
    if (r.events.length && this.flags.events > 0) {
      out.push('', 'Recent events:', ...r.events.map((e) => `  ${e.at}  ${e.message}`));
    }
    if (!r.refreshed && !this.flags.cached) out.push('', '(state not refreshed: another factory holds the lock)');
    const h = r.controlHost;
    if (h) {
      const every = h.reconcileIntervalMs > 0 ? `supervising the applied plans every ${h.reconcileIntervalMs / 1000} s (${h.reconcilePasses} pass${h.reconcilePasses === 1 ? '' : 'es'})` : 'not supervising';
      out.push('', `Control host: pid ${h.pid} since ${h.startedAt}${h.listen ? `, listening on https://${h.listen}` : ''}, ${every}.`);
    }
    this.human(out.join('\n'));
    return r;
  }
}
