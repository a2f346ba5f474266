import { FactoryCommand } from '../../cli/base.js';
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
    'A client whose FACTORY_* or DOCKER_HOST variables differ from the host\'s runs the command itself;',
    'FACTORY_CONTROL=off does the same for one command. Stop the host with SIGINT or SIGTERM: the socket is',
    'removed and the tasks keep running.',
  ].join(' ');
  static override examples = ['<%= config.bin %> control serve --state /var/lib/factory', 'nohup <%= config.bin %> control serve & <%= config.bin %> plan apply plans/'];

  protected async execute(): Promise<undefined> {
    if (this.flags.json) throw new FactoryError('control serve runs until stopped and has no --json output', { code: 'E_USAGE' });
    const log = (line: string) => process.stderr.write(`control host: ${line}\n`);
    const host = await ControlHost.start({
      stateDir: this.flags.state,
      run: (id, argv) => this.config.runCommand(id, argv),
      log,
    });
    log(`serving ${this.flags.state} on ${host.socket} (pid ${process.pid})`);
    // `on`, not `once`: signal-exit (under proper-lockfile) re-raises a signal that no other listener
    // is left to handle, which would kill the host before it removed its socket
    const signal = await new Promise<string>((resolve) => {
      process.on('SIGINT', () => resolve('SIGINT'));
      process.on('SIGTERM', () => resolve('SIGTERM'));
    });
    await host.close();
    log(`stopped (${signal}); the tasks keep running`);
    return undefined;
  }
}
