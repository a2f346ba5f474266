import { existsSync } from 'node:fs';
import path from 'node:path';
import { Args } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { controlSocketPath } from '../../control/host-protocol.js';
import { FactoryError } from '../../errors.js';
import type { StateCopyResult } from '../../state/copy.js';
import { isEtcdLocation } from '../../state/etcd-client.js';
import { stateDirOf } from '../../state/open.js';

/** StateMigrate is `factory state migrate FROM TO`: copies a state between a directory and etcd while nothing runs on it. */
export default class StateMigrate extends FactoryCommand<typeof StateMigrate> {
  static override summary = 'Copy a state between backends (a directory, etcd://HOST:PORT[,HOST:PORT…]/PREFIX), keeping its id, records and events.';
  static override description = [
    'FROM must not be in use: a control host answering on its socket, or a command holding its lock, stops the copy.',
    'TO must be empty (a directory without a state, an etcd prefix without keys). The copy is read back and compared.',
    'etcd connections take TLS and auth from FACTORY_ETCD_CA, FACTORY_ETCD_CERT, FACTORY_ETCD_KEY, FACTORY_ETCD_USER, FACTORY_ETCD_PASSWORD.',
  ].join(' ');
  static override examples = ['<%= config.bin %> state migrate ./.factory etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379/factory', '<%= config.bin %> state migrate etcd://127.0.0.1:2379/factory ./restored'];
  static override args = {
    from: Args.string({ description: 'the state to copy: a directory or etcd://…', required: true }),
    to: Args.string({ description: 'where to copy it: a new directory or an empty etcd://… prefix', required: true }),
  };

  protected async execute(): Promise<StateCopyResult> {
    const { from, to } = this.args;
    if (!isEtcdLocation(from)) {
      const socket = controlSocketPath(path.resolve(stateDirOf(from)));
      if (existsSync(socket)) {
        const { health } = await import('../../control/host-health.js');
        const host = await health(socket, 1000).catch(() => undefined);
        if (host) {
          throw new FactoryError(`a control host serves ${from} (pid ${host.pid ?? 'unknown'}): a state is migrated only while no host runs`, {
            code: 'E_CONTROL_RUNNING',
            hint: host.pid ? `stop it first: kill ${host.pid}` : 'stop it first',
          });
        }
      }
    }
    const { copyState } = await import('../../state/copy.js');
    const r = await copyState(from, to);
    const records = Object.entries(r.records).filter(([, n]) => n > 0).map(([t, n]) => `${n} ${t}`).join(', ');
    this.human(`Copied state ${r.id} (revision ${r.rev}: ${records || 'no records'}, ${r.events} events) from ${r.from} to ${r.to}.`);
    return r;
  }
}
