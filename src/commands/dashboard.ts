import { Flags } from '@oclif/core';
import { FactoryCommand } from '../cli/base.js';
import { status } from '../control/status.js';
import { FactoryError } from '../errors.js';
import { resolveInventory } from '../spec/index.js';
import { VIEWS, type View } from '../tui/navigation.js';
import type { DashboardActions } from '../tui/actions.js';
import type { DeclaredAgent } from '../tui/model.js';
import type { StateSource } from '../tui/state-source.js';

/** DashboardCommand is `factory dashboard`: a live terminal view of IDCs, clusters, agents, tasks, events, scheduled jobs and deployments. */
export default class DashboardCommand extends FactoryCommand<typeof DashboardCommand> {
  static override summary = 'Watch IDCs, clusters, agents, tasks, events, scheduled jobs and deployments live; restart tasks, drain agents, power VMs, run and suspend jobs.';
  static override description =
    'Follows the state file (every apply, status and action shows up at once) and asks the agents every --refresh-interval seconds. With --control URL (or FACTORY_CONTROL_URL, or a context) it watches that control host instead: it lists agents, tasks, jobs and deployments through its API, follows its event stream, lists again every --refresh-interval seconds, and its actions run on the host. Keys: arrows or j/k, 1-6 or tab to switch views, Enter to drill in, / to filter, l logs, ? help, q quit.';
  static override examples = [
    '<%= config.bin %> dashboard',
    '<%= config.bin %> dashboard --view tasks --refresh-interval 0',
    '<%= config.bin %> dashboard --state /var/lib/factory --inventory inventory.yaml',
    '<%= config.bin %> dashboard --control https://10.0.0.1:7443 --fingerprint SHA256 --token-file ~/.factory-token',
  ];
  static override flags = {
    'refresh-interval': Flags.integer({
      summary: 'Ask the agents what runs every N seconds (0: only follow the state file); with a control host, list its state again every N seconds.',
      default: 5,
      min: 0,
    }),
    view: Flags.string({ summary: 'The view to open with.', options: [...VIEWS], default: 'overview' }),
    ascii: Flags.boolean({ summary: 'Draw bars with ASCII characters.', default: false }),
  };

  protected async execute(): Promise<undefined> {
    if (this.flags.json) throw new FactoryError('dashboard is interactive and has no --json output', { code: 'E_USAGE', hint: 'use factory status --json' });
    if (!process.stdin.isTTY || !process.stdout.isTTY) {
      throw new FactoryError('dashboard needs a terminal (stdin and stdout must be a TTY)', { code: 'E_NO_TTY', hint: 'use factory status for scripts; over SSH, use ssh -t' });
    }
    // React's production build: the development one is several times slower per frame and larger
    process.env.NODE_ENV ??= 'production';
    const [{ render }, { createElement }, { Dashboard }, { AgentPoller }] = await Promise.all([import('ink'), import('react'), import('../tui/Dashboard.js'), import('../tui/agent-poller.js')]);
    const wiring = await this.wiring();
    const { source, actions, declared, stateLabel } = wiring;
    const poller = new AgentPoller(
      this.flags['refresh-interval'] * 1000,
      wiring.refresh,
      () => undefined, // a failed refresh shows as lost agents in the state (or the source's error line); the next one retries
    );
    // the alternate screen keeps the operator's scrollback intact, like top or less
    process.stdout.write('\u001b[?1049h\u001b[H');
    const app = render(
      createElement(Dashboard, {
        source,
        actions,
        declared,
        stateLabel,
        initialView: this.flags.view as View,
        ascii: this.flags.ascii,
      }),
      { exitOnCtrlC: true, patchConsole: true, maxFps: 30 },
    );
    const stop = () => app.unmount();
    process.once('SIGTERM', stop);
    process.once('SIGHUP', stop);
    poller.start();
    try {
      await app.waitUntilExit();
    } finally {
      process.off('SIGTERM', stop);
      process.off('SIGHUP', stop);
      poller.stop();
      source.close();
      process.stdout.write('\u001b[?1049l\u001b[?25h');
    }
    return undefined;
  }

  /**
   * wiring is where the dashboard's state and actions come from: a control host's API when one is
   * named (--control, FACTORY_CONTROL_URL, a context), else the state directory and src/control.
   */
  private async wiring(): Promise<{ source: StateSource; actions: DashboardActions; declared: DeclaredAgent[]; stateLabel: string; refresh: () => Promise<void> }> {
    const client = await this.remoteTarget();
    if (client) {
      const [{ ApiStateSource }, { apiActions }] = await Promise.all([import('../tui/api-source.js'), import('../tui/api-actions.js')]);
      // the first listing fails here, before the screen is taken, when the host cannot be reached or refuses the token
      const source = await ApiStateSource.open(client);
      // the host's inventory is not ours to read: its agents come from its state
      return { source, actions: apiActions(client), declared: [], stateLabel: source.url, refresh: () => source.refresh() };
    }
    const [{ controlActions }, { StateFileWatcher }] = await Promise.all([import('../tui/actions.js'), import('../tui/state-source.js')]);
    const inventory = await resolveInventory(this.flags.inventory);
    const declared = inventory.agents.map((a) => ({ name: a.name, idc: a.idc, cluster: a.cluster }));
    const source = await StateFileWatcher.open(this.flags.state, { declared });
    return {
      source,
      // a run now goes to the control host serving this state, found as `jobs run` finds it
      actions: controlActions({ stateDir: this.flags.state, inventoryPath: this.flags.inventory, host: async () => (await this.hostTarget())?.control }),
      declared,
      stateLabel: source.dir,
      refresh: async () => {
        await status({ stateDir: this.flags.state, inventoryPath: this.flags.inventory });
      },
    };
  }
}
