/** GET /v1/events: the event stream (server-sent events, served by ../events.ts). */
import type { ServerResponse } from 'node:http';
import * as z from 'zod';
import { EVENT_TOPICS, type EventTopic } from '../../state/backend.js';
import { callerOf } from '../auth.js';
import { ApiError } from '../errors.js';
import { streamEvents } from '../events.js';
import { errorResponses, idHeaders } from '../schemas.js';
import { READ, type ApiRoutes } from './context.js';

/**
 * eventsRoutes serve the event stream: from a revision (Last-Event-ID or since; else from now, or
 * every event kept with follow=false), of some topics, of the caller's project.
 */
export const eventsRoutes: ApiRoutes = (r, { backend, metrics, log, sseHeartbeatMs, sseMaxBuffer }) => {
  r.get(
    '/v1/events',
    {
      config: READ,
      schema: {
        summary: 'Server-sent events: id is the revision; Last-Event-ID resumes; `event: reset` when the revision is no longer kept',
        tags: ['events'],
        headers: idHeaders.extend({ 'last-event-id': z.string().optional() }),
        querystring: z.object({
          since: z.coerce.number().int().min(0).optional(),
          topic: z.string().max(200).optional(),
          follow: z.enum(['true', 'false']).optional().meta({ description: 'false with no since nor Last-Event-ID: every event kept (a listing), then `: caught up`' }),
        }),
        response: errorResponses,
      },
    },
    async (req, reply) => {
      const caller = callerOf(req);
      const lastId = req.headers['last-event-id'];
      let since = req.query.since;
      if (typeof lastId === 'string' && lastId !== '') {
        if (!/^\d{1,15}$/.test(lastId)) throw new ApiError(400, 'E_BAD_REQUEST', 'Last-Event-ID must be a revision');
        since = Number(lastId);
      }
      const latest = backend.view().rev;
      // a listing (`factory events` without -f) resumes nothing: it gets every event kept, holes and all
      const listing = since === undefined && req.query.follow === 'false';
      if (since === undefined) since = listing ? 0 : latest;
      if (since > latest) throw new ApiError(400, 'E_BAD_REQUEST', `revision ${since} is in the future (the newest is ${latest})`, 'resume from a revision this host sent');
      let topics: Set<EventTopic> | undefined;
      if (req.query.topic) {
        const want = req.query.topic.split(',').map((t) => t.trim()).filter(Boolean);
        const bad = want.filter((t) => !(EVENT_TOPICS as readonly string[]).includes(t));
        if (bad.length) throw new ApiError(400, 'E_BAD_REQUEST', `unknown topic ${bad.join(', ')}`, `topics: ${EVENT_TOPICS.join(', ')}`);
        topics = new Set(want as EventTopic[]);
      }
      reply.hijack();
      metrics.subscribers++;
      streamEvents({
        backend,
        res: reply.raw as ServerResponse,
        since,
        ...(listing ? { listing } : {}),
        ...(topics ? { topics } : {}),
        ...(caller.project !== undefined ? { project: caller.project } : {}),
        heartbeatMs: sseHeartbeatMs,
        maxBuffer: sseMaxBuffer,
        headers: { 'x-request-id': req.id },
        onClose: (dropped) => {
          metrics.subscribers--;
          if (dropped) {
            metrics.sseDropped.inc({ reason: dropped.startsWith('slow') ? 'slow-reader' : 'other' });
            log(`${req.id} event stream of ${caller.id} dropped: ${dropped}`);
          }
        },
      });
    },
  );
};
