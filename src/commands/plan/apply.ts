import { Args, Flags } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { runWithProgress } from '../../cli/progress.js';
import { renderApply } from '../../cli/render.js';
import { applyExitCode, EXIT, EXIT_CODES_HELP } from '../../cli/exit-codes.js';
import { applyPlans, type ApplyResult } from '../../control/plan.js';
import type { HttpControl } from '../../client/http-control.js';
import type { DeploymentRecord } from '../../deploy/types.js';

/** PlanApply converges the agents to the plans; a second apply of the same plans changes nothing. */
export default class PlanApply extends FactoryCommand<typeof PlanApply> {
  static override summary = 'Converge: start, restart, update and stop tasks so the agents match the plans.';
  static override description = [
    `Idempotent: a second apply of the same plans reports no changes. Tasks keep running after factory exits. Progress goes to stderr. ${EXIT_CODES_HELP}`,
    'A group whose spec changed (not only its count) is rolled out by a deployment (the group\'s update block: batches of',
    'maxParallel, each new task healthy before the next): apply prints its id (--json: deployments[].id). A control host carries',
    'it out (--wait follows it to the end, progress on stderr: exit 0 when it succeeded, 1 when it failed or was reverted);',
    'without one, apply carries it out itself before it returns.',
  ].join(' ');
  static override examples = ['<%= config.bin %> plan apply examples/quickstart.yaml', '<%= config.bin %> plan apply --json plans/', '<%= config.bin %> plan apply --wait plans/web.yaml'];
  static override strict = false;
  static override args = { plan: Args.string({ description: 'plan files or folders of plans', required: true }) };
  static override flags = {
    seed: Flags.integer({ summary: 'Seed for tie-breaking (the same seed gives the same plan).', default: 1 }),
    wait: Flags.boolean({ summary: 'Follow the deployments this apply starts to their end (progress on stderr); exit 1 if one fails or is reverted.', default: false }),
  };

  protected async execute(): Promise<ApplyResult> {
    let alone = false;
    let host: HttpControl | undefined;
    const result = await runWithProgress('apply', `applying ${this.positionals.join(' ')}`, (step) =>
      this.onHost(
        (h) => {
          host = h;
          return h.apply({ paths: this.positionals, inventory: this.flags.inventory, seed: this.flags.seed, progress: step });
        },
        () => {
          alone = true;
          return applyPlans({
            planPaths: this.positionals,
            stateDir: this.flags.state,
            inventoryPath: this.flags.inventory,
            seed: this.flags.seed,
            progress: step,
          });
        },
      ),
    );
    this.human(renderApply(result, 'apply'));
    if (alone && result.jobs && result.jobs.created.length + result.jobs.updated.length > 0) {
      // a one-shot command schedules nothing: say where the jobs will run
      process.stderr.write(`note: jobs are recorded in the state and run only while a control host serves it (none does now): factory control serve --state ${this.flags.state}\n`);
    }
    process.exitCode = applyExitCode(result);
    // the deployments this apply started, and those of its plans still in progress (an apply interrupted, applied again)
    const started = (result.deployments ?? []).filter((d) => d.id && (d.started || d.status === 'running')).map((d) => d.id!);
    // without a control host nothing else would carry the deployments out: apply does, --wait or not
    if (started.length > 0 && (alone || this.flags.wait)) {
      const { driveDeployments, followDeployments, chainOk } = await import('../../deploy/runner.js');
      const progress = (line: string) => process.stderr.write(`${line}\n`);
      if (alone) progress(`no control host serves ${this.flags.state}: carrying out ${started.length === 1 ? `deployment ${started[0]}` : `${started.length} deployments`} here (stopping this command leaves ${started.length === 1 ? 'it' : 'them'} where ${started.length === 1 ? 'it is' : 'they are'}; a control host or the next apply takes over)`);
      const chains = alone
        ? await driveDeployments({ stateDir: this.flags.state, ids: started, progress })
        : await followDeployments(started, async () => {
            const got = new Map<string, DeploymentRecord>();
            const ask = async (id: string) => {
              const d = await host!.deployment(id);
              got.set(d.id, d);
              if (d.revertedBy && !got.has(d.revertedBy)) await ask(d.revertedBy);
            };
            for (const id of started) await ask(id);
            return (id) => got.get(id);
          }, { progress, pollMs: 500 });
      const byId = new Map(chains.flat().map((d) => [d.id, d]));
      result.deployments = (result.deployments ?? []).map((v) => {
        const d = v.id ? byId.get(v.id) : undefined;
        return d ? { ...v, status: d.status, old: d.old, healthy: d.tasks.filter((t) => t.state === 'healthy').length, ...(d.message ? { message: d.message } : {}), ...(d.revertedBy ? { revertedBy: d.revertedBy } : {}) } : v;
      });
      for (const c of chains) {
        const last = c.at(-1);
        if (last) this.human(`Deployment ${c[0]!.id} ${c[0]!.plan}/${c[0]!.group}: ${c[0]!.status}${c.length > 1 ? ` (revert ${last.id}: ${last.status})` : ''}${c[0]!.message ? ` — ${c[0]!.message}` : ''}`);
        if (alone && last && (last.status === 'waiting-promotion' || last.status === 'paused')) {
          progress(`${last.id} waits (${last.status}): factory deploy promote ${last.id}, then plan apply again (or a control host) carries the rest out`);
        }
      }
      const waiting = (c: DeploymentRecord[]) => alone && (c.at(-1)?.status === 'waiting-promotion' || c.at(-1)?.status === 'paused');
      if (!chains.every((c) => chainOk(c) || waiting(c))) process.exitCode = EXIT.error;
    }
    return result;
  }
}
