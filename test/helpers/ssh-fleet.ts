/**
 * The setup every SSH test file shares: whether sshd can run here (a skip with the reason on a dev
 * machine, a failure under CI), a scratch folder, a fleet of loopback sshd hosts with the client key
 * and known_hosts that reach them, and an inventory of agents on those hosts. stop() ends it all.
 */
import path from 'node:path';
import { SSHD_PORT, SshdFleet, sshdSkipReason, type SshdFleetOptions } from '../harness/sshd.js';
import { scratchDir } from './cli.js';
import { writeInventory, type TestAgent, type TestAgentSsh, type TestIdc } from './inventory.js';

/** FleetAgent is an agent on fleet host `host` (127.0.<host>.1, root, the fleet's key); ssh overrides any of that. */
export type FleetAgent = Omit<TestAgent, 'ssh' | 'local'> & { host: number; ssh?: Partial<TestAgentSsh> };

/** SshTestFleetStart says how many hosts to start and, with idcs, which inventory to write. */
export interface SshTestFleetStart extends Omit<SshdFleetOptions, 'first' | 'dir'> {
  /** first is the index of the first host: hosts are 127.0.first.1 … 127.0.first+hosts-1.1. */
  first: number;
  hosts: number;
  /** settings go into the inventory's settings, next to the fleet's knownHostsFile. */
  settings?: Record<string, unknown>;
  /** idcs are the inventory's agents; without them no inventory is written. */
  idcs?: TestIdc<FleetAgent>[];
}

/** SshTestFleet is one SSH test file's sshd fleet, scratch folder and inventory. */
export class SshTestFleet {
  /** inventory is where start() writes the inventory: <dir>/inventory.yaml. */
  readonly inventory: string;
  /** state is a state folder for the CLI: <dir>/state. */
  readonly state: string;
  private running: SshdFleet | undefined;

  constructor(
    /** skip says why SSH tests cannot run here (undefined when they can); under CI sshdSkipReason threw instead. */
    readonly skip: string | undefined,
    private readonly scratch: { dir: string; cleanup: () => void },
  ) {
    this.inventory = path.join(scratch.dir, 'inventory.yaml');
    this.state = path.join(scratch.dir, 'state');
  }

  /** dir is the test's scratch folder; stop() removes it. */
  get dir(): string {
    return this.scratch.dir;
  }

  /** fleet is the running sshd fleet; it is an error to ask before start(). */
  get fleet(): SshdFleet {
    if (!this.running) throw new Error('the SSH test fleet was not started');
    return this.running;
  }

  /** start launches the sshd hosts and, when idcs are given, writes the inventory of their agents. */
  async start(opts: SshTestFleetStart): Promise<SshdFleet> {
    const { hosts, settings, idcs, ...fleetOpts } = opts;
    this.running = await SshdFleet.start(hosts, fleetOpts);
    if (idcs) this.writeInventory(this.inventory, idcs, settings);
    return this.running;
  }

  /** target is how to reach fleet host `host` (its address, root, the fleet's key and known_hosts): SshTransport options. */
  target(host: number): Required<Pick<TestAgentSsh, 'host' | 'port' | 'user' | 'identityFile' | 'knownHostsFile'>> {
    return { host: `127.0.${host}.1`, port: SSHD_PORT, user: 'root', identityFile: this.fleet.clientKey, knownHostsFile: this.fleet.knownHosts };
  }

  /** agent is the inventory entry of a FleetAgent: its ssh block and, by default, workDir <dir>/agents/<name>. */
  agent(a: FleetAgent): TestAgent {
    const { host, ssh, ...rest } = a;
    const { knownHostsFile: _inSettings, ...reach } = this.target(host);
    return { ...rest, ssh: { ...reach, ...ssh }, workDir: a.workDir ?? path.join(this.dir, 'agents', a.name) };
  }

  /** writeInventory writes an inventory of fleet agents to file, with the fleet's known_hosts in its settings. */
  writeInventory(file: string, idcs: TestIdc<FleetAgent>[], settings: Record<string, unknown> = {}): void {
    writeInventory(
      file,
      idcs.map((idc) => ({ name: idc.name, clusters: idc.clusters.map((c) => ({ name: c.name, agents: c.agents.map((a) => this.agent(a)) })) })),
      { ...settings, knownHostsFile: this.fleet.knownHosts },
    );
  }

  /** stop kills the fleet's sshd instances by pid, removes their folder and the scratch folder. */
  async stop(): Promise<void> {
    await this.running?.stop(true);
    this.scratch.cleanup();
  }
}

/**
 * sshTestFleet is the SSH setup of one test file, in a new scratch folder (prefix) or in the given
 * one. Call it at the top of the file: skip is known before the describe blocks are declared.
 */
export function sshTestFleet(scratch: string | { dir: string; cleanup: () => void }): SshTestFleet {
  const skip = sshdSkipReason();
  return new SshTestFleet(skip, typeof scratch === 'string' ? scratchDir(scratch) : scratch);
}
