import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Flags } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { AgentPool, WarmAgents } from '../../control/agents.js';
import { adoptState, closeStates, stateOf } from '../../control/state-handle.js';
import { Supervisor } from '../../control/supervisor.js';
import { DeploymentRunner } from '../../deploy/runner.js';
import { takeOver } from '../../control/takeover.js';
import { FactoryError } from '../../errors.js';
import { JobAgents } from '../../jobs/agents.js';
import { JobRunner, jobsRunner } from '../../jobs/runner.js';
import type { EtcdBackend } from '../../state/etcd-backend.js';
import { isEtcdLocation, parseEtcdLocation } from '../../state/etcd-client.js';
import type { EtcdHostRegistry, HostView } from '../../state/etcd-hosts.js';
import type { EtcdLeader, LeaderView } from '../../state/etcd-leader.js';
import { ExecutorClient } from '../../transport/client.js';

/** EXIT_NOT_LEADER is the exit code of a leader that could not renew its lease in time (EX_TEMPFAIL). */
export const EXIT_NOT_LEADER = 75;

/** defaultDataDir is where a host on etcd keeps its local files when --data-dir is not given: one folder per prefix. */
export function defaultDataDir(location: string): string {
  const base = process.env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'factory', `etcd${parseEtcdLocation(location).prefix.replace(/[^A-Za-z0-9._-]+/g, '_')}`);
}

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
    're-read, so an edited plan changes nothing until it is applied. Deployments of changed groups (plan apply) move every',
    'second whatever the interval. Stop it with SIGINT or SIGTERM: the tasks keep running.',
  ].join(' ');
  static override flags = {
    'reconcile-interval': Flags.integer({ summary: 'Seconds between supervision passes over the applied plans (0: none).', default: 30, min: 0 }),
    listen: Flags.string({ summary: 'Also serve on TCP with TLS at HOST:PORT (port 0 picks one; the address is printed).' }),
    'tls-cert': Flags.string({ summary: 'TLS certificate (PEM) for --listen; default: a self-signed one under <state>/tls/.' }),
    'tls-key': Flags.string({ summary: 'TLS private key (PEM) for --tls-cert.' }),
    'data-dir': Flags.string({ summary: 'With --state etcd://…: the folder of this host\'s local files (socket, tokens, TLS); default ~/.local/state/factory/etcd_<prefix>.' }),
    'lease-ttl': Flags.integer({ summary: 'With --state etcd://…: seconds of the leader lease; the leader stops and exits when it cannot renew it within 0.4 of that, and a standby takes over once the leader\'s heartbeat has not moved for a little longer.', default: 5, min: 1 }),
  };

  static override examples = [
    '<%= config.bin %> control serve --state /var/lib/factory',
    '<%= config.bin %> control serve --state /var/lib/factory --listen 0.0.0.0:8443',
    '<%= config.bin %> control serve --state etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379/factory --data-dir /var/lib/factory-host --listen 0.0.0.0:8443',
  ];

  protected async execute(): Promise<undefined> {
    if (this.flags.json) throw new FactoryError('control serve runs until stopped and has no --json output', { code: 'E_USAGE' });
    const log = (line: string) => process.stderr.write(`control host: ${line}\n`);
    const onEtcd = isEtcdLocation(this.flags.state);
    // absolute: the supervision pass and the services resolve it once. On etcd it is the host's own
    // folder (socket, tokens, TLS, sent inventories); the state itself is in etcd
    const stateDir = path.resolve(onEtcd ? (this.flags['data-dir'] ?? defaultDataDir(this.flags.state)) : this.flags.state);
    let etcd: EtcdBackend | undefined;
    if (onEtcd) {
      const { EtcdBackend } = await import('../../state/etcd-backend.js');
      fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
      etcd = await EtcdBackend.open(this.flags.state);
      adoptState(stateDir, etcd);
    }
    const backend = await stateOf(stateDir, { follow: true });
    let leader: EtcdLeader | undefined;
    const { ApiError } = await import('../../api/errors.js');
    const writeGate = () => {
      if (!leader || leader.epoch !== undefined) return undefined;
      const url = leader.current?.record.url;
      // a follower that cannot read etcd says so: with no quorum, no host leads and nothing is written
      const trouble = leader.etcdTrouble;
      return new ApiError(
        421,
        'E_NOT_LEADER',
        `this control host follows (state ${backend.location}); ${leader.current ? `pid ${leader.current.record.pid} on ${leader.current.record.host} leads (epoch ${leader.current.epoch})${url ? ` at ${url}` : ''}` : 'no host leads yet (an election is under way)'}${trouble ? `; but ${trouble}` : ''}`,
        trouble ? 'is a quorum of the etcd members up and reachable from the control hosts? (etcdctl endpoint health): a leader needs etcd, and writes need a leader' : url ? `send writes to ${url} (give every host with --control: the client follows the leader)` : 'try again in a few seconds',
        url ? { leader: url } : undefined,
      );
    };
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
    // on etcd: this host's registration (<prefix>/hosts/<id>) and its view, and a reader of the members
    let registry: EtcdHostRegistry | undefined;
    const reader = etcd?.statusReader();
    const startedAt = new Date().toISOString();
    const { etcdHostStatus, etcdSelfStatus } = await import('../../control/control-status.js');
    const selfView = () => etcdSelfStatus(registry, leader, backend.view().rev, startedAt);
    const controlStatus = () => etcdHostStatus(reader!, { location: backend.location, id: backend.id, rev: backend.view().rev }, etcd!.loc, selfView(), leader);
    const host = await ApiHost.start({
      stateDir,
      backend,
      services: createControlServices({ stateDir, inventoryPath: this.flags.inventory }),
      listen: this.flags.listen,
      tlsCert: this.flags['tls-cert'],
      tlsKey: this.flags['tls-key'],
      log,
      // on etcd only the leader writes the state: a host writes its root token once it leads
      rootToken: onEtcd ? 'when-leading' : 'now',
      app: {
        writeGate,
        ...(etcd ? { controlStatus } : {}),
        health: () => ({
          pid: process.pid,
          agents: warm.size,
          reconcileIntervalMs: every * 1000,
          reconcilePasses: supervisor?.passes ?? 0,
          stateId: backend.id,
          ...(leader ? { role: leader.epoch !== undefined ? 'leader' : 'follower', epoch: leader.epoch ?? null, leader: leader.current ? { epoch: leader.current.epoch, ...leader.current.record } : null } : {}),
        }),
      },
    });
    if (etcd) {
      const ttl = this.flags['lease-ttl'];
      const url = host.address ? `https://${host.address}` : undefined;
      registry = etcd.hostRegistry({ ttlSec: ttl, url, log });
      await registry.register().catch((err: unknown) => log(`cannot register this host under ${etcd.loc.prefix}/hosts/ yet: ${(err as Error).message}; trying again`));
      const election = etcd.election({
        ttlSec: ttl,
        url,
        onLost: (why) => {
          // stop acting at once: no more calls to executors, no more commits; a supervisor may start it again
          ExecutorClient.fencingEpoch = () => 0;
          log(`lost the leadership of ${backend.location}: ${why}; exiting (${EXIT_NOT_LEADER})`);
          fs.rmSync(host.socket, { force: true });
          process.exit(EXIT_NOT_LEADER);
        },
      });
      leader = election;
      log(`state ${backend.location} (id ${backend.id}) on etcd, files in ${stateDir}, pid ${process.pid}: standing for leader (lease ${ttl} s, renew deadline ${election.deadlineMs} ms)`);
      const epoch = await election.campaign((now) => {
        log(now ? `following pid ${now.record.pid} on ${now.record.host} (epoch ${now.epoch}${now.record.url ? `, ${now.record.url}` : ''})` : 'no leader: standing');
        void registry!.update(followerView(now));
      });
      etcd.fenceByLeader(epoch);
      ExecutorClient.fencingEpoch = () => election.epoch;
      const { isLeaderEvent, leaderElectedEvent, predecessorOf } = await import('../../control/leader-events.js');
      const before = predecessorOf(epoch, backend.eventsSince(0, isLeaderEvent).events, election.previous && identityOf(election.previous), election.deposed);
      // the first write of a new leader: an event that says so and whom it took over from (clients following events see the change)
      await backend.lock({ purpose: 'leader', timeoutMs: 30_000 });
      try {
        await backend.commit({ ops: [], events: [leaderElectedEvent({ epoch, pid: process.pid, host: os.hostname(), url }, before)] });
      } finally {
        await backend.unlock();
      }
      await registry.update({ role: 'leader', epoch });
      const rootFile = await host.tokens.ensureRoot(stateDir);
      if (rootFile) log(`wrote the root admin token to ${rootFile} (mode 0600); use it as Authorization: Bearer <token>`);
      log(`leading ${backend.location} (epoch ${epoch})${before ? `; took over from epoch ${before.epoch} (${before.ended === 'resigned' ? 'it resigned' : before.ended === 'deposed' ? `deposed: no heartbeat for ${before.silentMs} ms` : 'its lease expired'})` : ''}`);
    }
    supervisor = new Supervisor({ stateDir, intervalMs: every * 1000, log, observe: (s, ok) => host.metrics.observeReconcile(s, ok) });
    // a new leader first asks every agent what runs (takeover.ts); its supervision passes follow
    supervisor.start(leader ? () => takeOver({ stateDir, inventoryPath: this.flags.inventory, supervisor, log }) : undefined);
    // deployments in progress move on their own timer, whatever --reconcile-interval says (src/deploy)
    const deployments = new DeploymentRunner({ stateDir, backend, log });
    deployments.start();
    // the plans' scheduled jobs run here, and only here (a one-shot command schedules nothing)
    const jobAgents = new JobAgents(backend);
    const jobs = new JobRunner({ state: backend, agents: jobAgents, log, observe: (m) => host.metrics.observeJobRun(m) });
    jobsRunner.current = jobs;
    jobs.start();
    log(`state ${onEtcd ? backend.location : stateDir} (id ${backend.id}), pid ${process.pid}; ${every > 0 ? `supervising the applied plans every ${every} s` : 'no supervision'}`);
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
    await deployments.stop();
    await jobs.stop();
    if (leader?.epoch !== undefined) {
      // a clean stop: the last write of this leader says so (its successor then knows it resigned)
      const { leaderResignedEvent } = await import('../../control/leader-events.js');
      try {
        await backend.lock({ purpose: 'leader', timeoutMs: 5_000 });
        try {
          await backend.commit({ ops: [], events: [leaderResignedEvent({ epoch: leader.epoch, pid: process.pid, host: os.hostname() }, `stopped by ${signal}`)] });
        } finally {
          await backend.unlock();
        }
      } catch (err) {
        log(`cannot record the resignation: ${(err as Error).message}`);
      }
    }
    await leader?.resign();
    await registry?.close();
    reader?.close();
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

/** identityOf names the leader of a view (for the leader events). */
function identityOf(v: LeaderView): { epoch: number; pid: number; host: string; url?: string } {
  return { epoch: v.epoch, pid: v.record.pid, host: v.record.host, ...(v.record.url ? { url: v.record.url } : {}) };
}

/** followerView is a standing host's view: it follows the leader it read, or stands while nobody leads. */
function followerView(now: LeaderView | undefined): HostView {
  return now ? { role: 'follower', epoch: now.epoch, leader: identityOf(now) } : { role: 'candidate' };
}
