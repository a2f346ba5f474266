import fs from 'node:fs';
import path from 'node:path';
import { Flags } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { AgentPool, WarmAgents } from '../../control/agents.js';
import { closeStates, stateOf } from '../../control/state-handle.js';
import { Supervisor } from '../../control/supervisor.js';
import { FactoryError } from '../../errors.js';
import { JobAgents } from '../../jobs/agents.js';
import { JobRunner, jobsRunner } from '../../jobs/runner.js';

/** ControlServe is `factory control serve`: the control host of a state, serving the HTTP API. */
export default class ControlServe extends FactoryCommand<typeof ControlServe> {
  static override summary = 'Run the control host of a state: the HTTP API on <state>/control.sock and, with --listen, on TCP with TLS.';
  static override description = [
    'Serves the typed HTTP API (see schema/openapi.json) on <state>/control.sock (mode 0600, trusted for its own user without',
    'a token) and, with --listen HOST:PORT, on TCP with TLS: --tls-cert/--tls-key, or a self-signed pair made once under',
    '<state>/tls/ whose SHA-256 fingerprint is printed for clients to pin (--fingerprint). The first start writes an admin',
    'token to <state>/tokens/root (mode 0600); make narrower ones with `factory tokens create`.',
    'Reads answer from the state in memory and never wait for a running apply; writes run one at a time.',
    'It runs the applied plans\' scheduled jobs (jobs:), and only it does: one-shot commands record them and schedule nothing.',
    'Every --reconcile-interval seconds it converges the agents to the plans as they were last applied (recorded in the',
    'state): dead or unhealthy tasks restart per their restart policy and tasks of lost agents move; plan files are not',
    're-read, so an edited plan changes nothing until it is applied. Stop it with SIGINT or SIGTERM: the tasks keep running.',
  ].join(' ');
  static override flags = {
    'reconcile-interval': Flags.integer({ summary: 'Seconds between supervision passes over the applied plans (0: none).', default: 30, min: 0 }),
    listen: Flags.string({ summary: 'Also serve on TCP with TLS at HOST:PORT (port 0 picks one; the address is printed).' }),
    'tls-cert': Flags.string({ summary: 'TLS certificate (PEM) for --listen; default: a self-signed one under <state>/tls/.' }),
    'tls-key': Flags.string({ summary: 'TLS private key (PEM) for --tls-cert.' }),
  };

  static override examples = [
    '<%= config.bin %> control serve --state /var/lib/factory',
    '<%= config.bin %> control serve --state /var/lib/factory --listen 0.0.0.0:8443',
  ];

  protected async execute(): Promise<undefined> {
    if (this.flags.json) throw new FactoryError('control serve runs until stopped and has no --json output', { code: 'E_USAGE' });
    const log = (line: string) => process.stderr.write(`control host: ${line}\n`);
    // absolute: the supervision pass and the services resolve it once
    const stateDir = path.resolve(this.flags.state);
    const backend = await stateOf(stateDir, { follow: true });
    const { ApiHost } = await import('../../api/host.js');
    const { createControlServices } = await import('../../api/services.js');
    // the local agent's executor runs in a child process here (a one-shot CLI runs it in process): its
    // spawns, cgroup writes and file work then never hold up the host's event loop, where reads are
    // answered; a long-lived host pays the child's start once (its session is kept warm)
    process.env.FACTORY_LOCAL_EXECUTOR ??= 'child';
    const warm = new WarmAgents();
    AgentPool.warm = warm;
    const every = this.flags['reconcile-interval'];
    let supervisor: Supervisor | undefined;
    const host = await ApiHost.start({
      stateDir,
      backend,
      services: createControlServices({ stateDir, inventoryPath: this.flags.inventory }),
      listen: this.flags.listen,
      tlsCert: this.flags['tls-cert'],
      tlsKey: this.flags['tls-key'],
      log,
      app: { health: () => ({ pid: process.pid, agents: warm.size, reconcileIntervalMs: every * 1000, reconcilePasses: supervisor?.passes ?? 0, jobPasses: jobsRunner.current?.passes ?? 0, stateId: backend.id }) },
    });
    supervisor = new Supervisor({ stateDir, intervalMs: every * 1000, log, observe: (s, ok) => host.metrics.observeReconcile(s, ok) });
    supervisor.start();
    // the plans' scheduled jobs run here, and only here (a one-shot command schedules nothing)
    const jobAgents = new JobAgents(backend);
    const jobs = new JobRunner({ state: backend, agents: jobAgents, log, observe: (m) => host.metrics.observeJobRun(m) });
    jobsRunner.current = jobs;
    jobs.start();
    log(`state ${stateDir} (id ${backend.id}), pid ${process.pid}; ${every > 0 ? `supervising the applied plans every ${every} s` : 'no supervision'}`);
    // executors run in this process: a stray rejection in a driver is logged, not fatal; an exception
    // nobody caught leaves the process in an unknown state, so the host stops (its socket goes) and a
    // supervisor may start it again
    process.on('unhandledRejection', (err) => log(`internal error (continuing): ${(err as Error)?.stack ?? String(err)}`));
    process.on('uncaughtException', (err) => {
      log(`internal error, stopping: ${err.stack ?? err.message}`);
      fs.rmSync(host.socket, { force: true });
      process.exit(70);
    });
    // `on`, not `once`: signal-exit (under proper-lockfile) re-raises a signal that no other listener
    // is left to handle, which would kill the host before it removed its socket
    let stopping = false;
    const signal = await new Promise<string>((resolve) => {
      const on = (name: string) => () => {
        if (!stopping) {
          stopping = true;
          return resolve(name);
        }
        log(`${name} again: stopping now`);
        fs.rmSync(host.socket, { force: true });
        process.exit(1);
      };
      process.on('SIGINT', on('SIGINT'));
      process.on('SIGTERM', on('SIGTERM'));
    });
    await supervisor.stop();
    await jobs.stop();
    jobsRunner.current = undefined;
    await jobAgents.close();
    await host.close();
    AgentPool.warm = undefined;
    await warm.close();
    await closeStates();
    log(`stopped (${signal}); the tasks keep running`);
    return undefined;
  }
}
