/**
 * GET /v1/control: the control hosts of the state (`factory control status`): the state's location,
 * the etcd members, the leader with its epoch and lease, every registered host with its view, and
 * this host's own view. Read-only, any token; a follower answers it too (from etcd, or from its own
 * copy when etcd has no quorum, saying so in `stale`).
 */
import * as z from 'zod';
import { controlStatusOfFile, singleHost, type ControlStatus } from '../../control/control-status.js';
import { errorResponses, idHeaders } from '../schemas.js';
import { READ, type ApiRoutes } from './context.js';

const lease = z
  .object({
    id: z.string().describe('the lease id in hex (etcdctl lease timetolive ID)'),
    ttlSec: z.number().optional().describe('its granted time to live'),
    leftSec: z.number().optional().describe('whole seconds left, as etcd says (absent: etcd did not answer)'),
    expired: z.boolean().optional().describe('etcd no longer knows it: the key goes (or went) with it'),
  })
  .meta({ id: 'Lease' });

const leaderRef = z.object({ epoch: z.number(), pid: z.number(), host: z.string(), url: z.string().optional() });

const member = z
  .object({
    id: z.string().describe('member id in hex'),
    name: z.string(),
    clientUrls: z.array(z.string()),
    peerUrls: z.array(z.string()),
    learner: z.boolean(),
    healthy: z.boolean().describe('it answered for itself, sees a raft leader and raises no alarm'),
    leader: z.boolean().describe('the raft leader, as the members that answered see it'),
    version: z.string().optional(),
    dbSizeBytes: z.number().optional(),
    raftTerm: z.number().optional(),
    raftIndex: z.number().optional(),
    error: z.string().optional().describe('why it is not healthy'),
  })
  .meta({ id: 'EtcdMember' });

const host = z
  .object({
    id: z.string().describe('hostname-pid'),
    pid: z.number(),
    host: z.string().describe('the machine\'s hostname'),
    url: z.string().optional().describe('its API on TCP (--listen)'),
    startedAt: z.string(),
    role: z.enum(['leader', 'follower', 'candidate', 'single']).describe('candidate: stands while nobody leads; single: the only host of a file state'),
    epoch: z.number().optional().describe('the epoch it leads or follows'),
    leader: leaderRef.optional().describe('the leader it follows, as it last read it'),
    viewAt: z.string().optional().describe('when its view last changed'),
    lease: lease.optional().describe('its registration\'s lease: the key goes with it when the host dies'),
  })
  .meta({ id: 'ControlHost' });

const self = host
  .extend({
    stateRev: z.number().describe('the newest revision in its copy of the state'),
    renewDeadlineMs: z.number().optional().describe('how long it may lead without a renewal answered'),
    lastRenewalAt: z.string().optional().describe('while it leads: when the newest renewal etcd answered was sent'),
    registration: z.object({ lastRenewalAt: z.string().optional(), error: z.string().optional() }).optional(),
  })
  .meta({ id: 'ControlSelf' });

/** controlStatusSchema is the answer of GET /v1/control (component ControlStatus). */
export const controlStatusSchema = z
  .object({
    state: z.object({ backend: z.enum(['file', 'etcd']), location: z.string(), id: z.string(), rev: z.number() }),
    etcd: z
      .object({
        endpoints: z.array(z.string()),
        prefix: z.string(),
        members: z.array(member),
        leaderMember: z.string().optional().describe('name (else id) of the raft leader'),
        error: z.string().optional().describe('the member list could not be read: members are the endpoints, asked one by one'),
      })
      .optional()
      .describe('absent on a file state'),
    leader: z
      .object({
        epoch: z.number(),
        pid: z.number(),
        host: z.string(),
        url: z.string().optional(),
        since: z.string(),
        lease,
        heartbeatAt: z.string().optional().describe('when the leader sent its newest heartbeat that etcd wrote (it renews every ttl/10)'),
      })
      .nullable()
      .describe('the leading control host (null: nobody leads, or a file state)'),
    hosts: z.array(host).describe('every registered host (etcd: the keys <prefix>/hosts/*; a file state: its host)'),
    self: self.nullable().describe('the view of the host that answered'),
    source: z.enum(['host', 'etcd', 'directory']),
    stale: z.string().optional().describe('why some of it may be out of date (etcd without a quorum)'),
  })
  .meta({ id: 'ControlStatus' });

/** controlRoutes answer who the control hosts are and who leads. */
export const controlRoutes: ApiRoutes = (r, { backend, health, controlStatus }) => {
  r.get(
    '/v1/control',
    { config: READ, schema: { summary: 'The control hosts: etcd members, the leader (epoch, lease), every host and its view, this host\'s own view', tags: ['host'], headers: idHeaders, response: { ...errorResponses, 200: controlStatusSchema } } },
    async (): Promise<ControlStatus> => {
      if (controlStatus) return controlStatus();
      // a host without a status of its own (one state, one host): it is the single host
      const h = health?.() ?? {};
      const url = typeof h.listen === 'string' ? `https://${h.listen}` : undefined;
      const view = backend.view();
      return controlStatusOfFile({ location: backend.location, id: backend.id, rev: view.rev }, singleHost({ url, startedAt: typeof h.startedAt === 'string' ? h.startedAt : '', stateRev: view.rev }));
    },
  );
};
