import fs from 'node:fs';
import path from 'node:path';
import { Flags } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { reconcileRecorded } from '../../control/plan.js';
import { ControlHost } from '../../control/serve.js';
import { FactoryError } from '../../errors.js';

/** ControlServe is `factory control serve`: a long-running host for one state directory that runs the CLI's commands warm. */
export default class ControlServe extends FactoryCommand<typeof ControlServe> {
  static override summary = 'Keep factory running for a state directory: plan, status and agents commands run here, warm.';
  static override description = [
    'Listens on <state>/control.sock (mode 0600). While it runs, `factory plan diff|apply|destroy`, `factory status` and',
    '`factory agents list` on the same state directory are forwarded to it and run in this process, where Node, the',
    "modules and the agents' executor sessions are already warm; their output and exit codes are unchanged.",
    'The state file is locked and written exactly as by a one-shot run. Commands run one at a time.',
    'Every --reconcile-interval seconds, between commands, it converges the agents to the plans as they were last applied',
    '(recorded in the state): dead or unhealthy tasks restart per their restart policy and tasks of lost agents move;',
    'plan files are not re-read, so an edited plan changes nothing until it is applied.',
    'A client whose FACTORY_* or DOCKER_HOST variables differ from the host\'s runs the command itself;',
    'FACTORY_CONTROL=off does the same for one command. Stop the host with SIGINT or SIGTERM: the socket is',
    'removed and the tasks keep running.',
  ].join(' ');
  static override flags = {
    'reconcile-interval': Flags.integer({
      summary: 'Seconds between supervision passes over the applied plans (0: none).',
      default: 30,
      min: 0,
    }),
  };

  static override examples = ['<%= config.bin %> control serve --state /var/lib/factory', 'nohup <%= config.bin %> control serve & <%= config.bin %> plan apply plans/'];

  protected async execute(): Promise<undefined> {
    if (this.flags.json) throw new FactoryError('control serve runs until stopped and has no --json output', { code: 'E_USAGE' });
    const log = (line: string) => process.stderr.write(`control host: ${line}\n`);
    if (this.flags.inventory) log('note: --inventory is not used here: each forwarded command names its own, and supervision uses the inventory each plan was applied with');
    // absolute: forwarded commands run in their clients' directories, the supervision pass in ours
    const stateDir = path.resolve(this.flags.state);
    const host = await ControlHost.start({
      stateDir,
      run: (id, argv) => this.config.runCommand(id, argv),
      log,
      reconcileIntervalMs: this.flags['reconcile-interval'] * 1000,
      reconcile: async () => {
        const r = await reconcileRecorded({ stateDir, progress: (line) => log(`reconcile: ${line}`) });
        if (r.skipped) log(`reconcile skipped: ${r.skipped}`);
        for (const p of r.passes) {
          if (p.error) continue; // said by the progress line
          if (p.results.length > 0) log(`reconcile: ${p.plans.join(', ')}: ${p.results.filter((x) => x.ok).length} of ${p.results.length} change(s) done`);
        }
      },
    });
    const every = this.flags['reconcile-interval'];
    log(`serving ${stateDir} on ${host.socket} (pid ${process.pid}); ${every > 0 ? `supervising the applied plans every ${every} s` : 'no supervision'}`);
    // executors run in this process now: a stray rejection in a driver is logged, not fatal; an
    // exception nobody caught leaves the process in an unknown state, so the host stops (its socket
    // goes, clients run commands themselves) and a supervisor may start it again
    process.on('unhandledRejection', (err) => log(`internal error (continuing): ${(err as Error)?.stack ?? String(err)}`));
    process.on('uncaughtException', (err) => {
      log(`internal error, stopping: ${err.stack ?? err.message}`);
      fs.rmSync(host.socket, { force: true });
      process.exit(70);
    });
    // `on`, not `once`: signal-exit (under proper-lockfile) re-raises a signal that no other listener
    // is left to handle, which would kill the host before it removed its socket. A second signal
    // while a command still runs stops the host at once.
    let stopping = false;
    const signal = await new Promise<string>((resolve) => {
      const on = (name: string) => () => {
        if (!stopping) {
          stopping = true;
          return resolve(name);
        }
        log(`${name} again: stopping now, without waiting for the running command`);
        fs.rmSync(host.socket, { force: true });
        process.exit(1);
      };
      process.on('SIGINT', on('SIGINT'));
      process.on('SIGTERM', on('SIGTERM'));
    });
    await host.close();
    log(`stopped (${signal}); the tasks keep running`);
    return undefined;
  }
}
