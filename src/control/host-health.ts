/** health asks the control host on a state's socket who it is (GET /v1/health); the host itself uses it to refuse a second host. */
import http from 'node:http';

/** HostHealth is what GET /v1/health answers to a local caller. */
export interface HostHealth {
  ok: boolean;
  api: string;
  pid: number;
  state: string;
  stateId: string;
  rev: number;
  socket: string;
  startedAt: string;
  agents: number;
  reconcileIntervalMs: number;
  reconcilePasses: number;
  listen?: string;
  tlsFingerprint?: string;
}

/** health asks the control host on a socket who it is; rejects when nothing answers within timeoutMs. */
export function health(socket: string, timeoutMs = 2000): Promise<HostHealth> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, path: '/v1/health', method: 'GET', timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as HostHealth);
        } catch (err) {
          reject(err as Error);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
