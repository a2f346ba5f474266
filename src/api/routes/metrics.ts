/** GET /metrics: the host's Prometheus metrics. */
import { READ, type ApiRoutes } from './context.js';

/** metricsRoutes serve the host's metrics in Prometheus' text format. */
export const metricsRoutes: ApiRoutes = (r, { metrics }) => {
  r.get('/metrics', { config: READ, schema: { summary: 'Prometheus metrics', tags: ['host'] } }, async (_req, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
};
