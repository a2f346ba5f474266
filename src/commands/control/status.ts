import { FactoryCommand } from '../../cli/base.js';
import { renderControlStatus } from '../../cli/render-control-status.js';
import type { ControlStatus } from '../../control/control-status.js';
import { StateError } from '../../errors.js';
import { isEtcdLocation } from '../../state/etcd-client.js';
import { stateDirOf } from '../../state/open.js';

/**
 * ControlStatus is `factory control status`: the control hosts of a state and who leads. It asks a
 * host when one is named (--control, a context) or serves the state's socket; else it reads an etcd
 * state from etcd itself (--state etcd://…: members, leader key, host keys), or a state directory
 * (its id and revision: no host serves it). Reading never writes.
 */
export default class ControlStatusCommand extends FactoryCommand<typeof ControlStatusCommand> {
  static override summary = 'Show the control hosts of a state: the etcd members, the leader (epoch, lease), every host and its view.';
  static override description = [
    'Asks a control host (--control URL[,URL…], a context, or the one on <state>/control.sock): any host answers, a follower too.',
    'Without one, --state etcd://HOST:PORT[,…]/PREFIX reads etcd directly (the members and their health, <prefix>/leader,',
    '<prefix>/hosts/*), and --state DIR says that no host serves the directory. A host on etcd that stopped renewing its',
    'registration drops out of the list within its lease (--lease-ttl of control serve).',
  ].join(' ');
  static override examples = [
    '<%= config.bin %> control status --control https://10.0.0.1:8443,https://10.0.0.2:8443 --fingerprint FA,FB --token-file root.token',
    '<%= config.bin %> control status --state etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379/factory --json',
    '<%= config.bin %> control status --state /var/lib/factory',
  ];

  protected async execute(): Promise<ControlStatus> {
    const status = await this.onHost(
      (host) => host.controlStatus(),
      () => this.withoutHost(),
    );
    this.human(renderControlStatus(status));
    return status;
  }

  /** withoutHost reads the state itself: etcd directly, or the directory's id and revision. */
  private async withoutHost(): Promise<ControlStatus> {
    const { controlStatusOfEtcd, controlStatusOfFile } = await import('../../control/control-status.js');
    const location = this.flags.state;
    if (isEtcdLocation(location)) {
      const { EtcdStatusReader } = await import('../../state/etcd-status.js');
      const reader = await EtcdStatusReader.open(location);
      try {
        return controlStatusOfEtcd(reader.location, await reader.read(), null);
      } finally {
        reader.close();
      }
    }
    const path = await import('node:path');
    const { STATE_FILE } = await import('../../state/file-backend.js');
    const { readStateHeadSync } = await import('../../state/read-sync.js');
    const dir = path.resolve(stateDirOf(location));
    const head = readStateHeadSync(path.join(dir, STATE_FILE));
    if (!head) {
      throw new StateError(`there is no state in ${dir}, and no control host was named`, {
        code: 'E_STATE_MISSING',
        hint: 'name a host with --control URL (or a context), or pass --state DIR (a state directory) or --state etcd://HOST:PORT/PREFIX',
      });
    }
    return controlStatusOfFile({ location: dir, ...head }, null);
  }
}
