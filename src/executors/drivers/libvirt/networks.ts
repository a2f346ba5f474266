/**
 * The isolated networks of a store: one libvirt network per subnet name (no forward, no IP, its own
 * bridge), defined from `networks/<subnet>.xml` when the first VM joins it and removed once no domain
 * of the store uses it. A VM with a health check gives the bridge an IPv6 link-local address
 * (enableHostLink), so that its prober on the agent reaches the guest. Defining, starting and removing go through `virsh`, one at a time per network.
 */
import fs from 'node:fs';
import path from 'node:path';
import { FactoryError } from '../../../errors.js';
import type { KeyedQueue } from '../keyed-queue.js';
import type { Libvirt } from './connection.js';
import { shortHash, type VmStore } from './store.js';
import { interfaceNetworks, networkXml } from './xml.js';

/**
 * enableHostLink gives a subnet's bridge its IPv6 link-local address, so that the agent reaches the
 * VMs' link-local addresses (their health checks, health.ts): libvirt switches IPv6 off on the bridge of
 * a network without an IPv6 address. Router advertisements from guests are ignored first (no address
 * or route of the host comes from a guest); nothing is routed: link-local stays on the bridge.
 */
export function enableHostLink(bridge: string): void {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(bridge)) throw new FactoryError(`bad bridge name ${JSON.stringify(bridge)}`, { code: 'E_BAD_REQUEST' });
  const conf = `/proc/sys/net/ipv6/conf/${bridge}`;
  for (const [key, value] of [['accept_ra', '0'], ['autoconf', '0'], ['disable_ipv6', '0']] as const) {
    const file = `${conf}/${key}`;
    if (fs.readFileSync(file, 'utf8').trim() !== value) fs.writeFileSync(file, value);
  }
}

/** VmNetworks creates and collects the isolated networks of one store. */
export class VmNetworks {
  constructor(
    private readonly lv: Libvirt,
    private readonly store: VmStore,
    private readonly queue: KeyedQueue,
  ) {}

  /** name is the libvirt network of a subnet in this store. */
  name(subnet: string): string {
    return `${this.store.prefix}${subnet}`;
  }

  /** ensure defines and starts the subnet's network unless it runs already, and returns its name. */
  ensure(subnet: string): Promise<string> {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(subnet)) throw new FactoryError(`bad subnet name ${JSON.stringify(subnet)}`, { code: 'E_BAD_REQUEST' });
    const net = this.name(subnet);
    return this.queue.run(`net:${net}`, async () => {
      const uri = ['-c', this.lv.uri];
      const tool = this.lv.tool;
      let info = await tool('virsh', [...uri, 'net-info', net]).catch(() => undefined);
      if (info === undefined) {
        const file = path.join(this.store.root, 'networks', `${subnet}.xml`);
        fs.writeFileSync(file, networkXml(net, `fv${shortHash(`${this.store.root}/${subnet}`, 11)}`));
        await tool('virsh', [...uri, 'net-define', file]).catch(async (err) => {
          if ((await tool('virsh', [...uri, 'net-info', net]).catch(() => undefined)) === undefined) throw err;
        });
        info = await tool('virsh', [...uri, 'net-info', net]);
      }
      if (!/^Active:\s+yes/m.test(info)) {
        await tool('virsh', [...uri, 'net-start', net]).catch(async (err) => {
          if (!/^Active:\s+yes/m.test(await tool('virsh', [...uri, 'net-info', net]))) throw err;
        });
      }
      return net;
    });
  }

  /** collect removes this store's networks that no domain of the store uses any more. */
  async collect(): Promise<void> {
    const uri = ['-c', this.lv.uri];
    const prefix = this.store.prefix;
    const nets = (await this.lv.tool('virsh', [...uri, 'net-list', '--all', '--name'])).split('\n').map((l) => l.trim()).filter((l) => l.startsWith(prefix));
    if (!nets.length) return;
    const used = new Set<string>();
    for (const dom of await this.lv.hv.connectListAllDomains()) {
      try {
        if ((await dom.getName()).startsWith(prefix)) for (const n of interfaceNetworks(await dom.getXMLDesc())) used.add(n);
      } catch {
        /* gone */
      }
    }
    for (const net of nets) {
      if (used.has(net)) continue;
      await this.queue.run(`net:${net}`, async () => {
        await this.lv.tool('virsh', [...uri, 'net-destroy', net]).catch(() => undefined);
        await this.lv.tool('virsh', [...uri, 'net-undefine', net]).catch(() => undefined);
      });
    }
  }
}
