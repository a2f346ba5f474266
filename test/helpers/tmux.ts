/** The dashboard e2e tests' tmux: a private server per test file, and the plan they both drive. */
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';

/** tmuxAvailable tells whether tmux runs here; missing, it is a skip with the reason on a dev machine and a failure under CI. */
export function tmuxAvailable(what: string): boolean {
  const ok = spawnSync('tmux', ['-V']).status === 0;
  if (!ok && process.env.CI) throw new Error(`tmux is required in CI for the ${what} end-to-end test (apt-get install tmux)`);
  if (!ok) process.stderr.write(`${what} e2e skipped: tmux is not installed (apt-get install tmux)\n`);
  return ok;
}

/** tmuxServer runs tmux commands on a server of this process alone; capture prints the session's pane. */
export function tmuxServer(session: string): { tmux: (...args: string[]) => string; capture: () => string; kill: () => void } {
  const socket = `factory-${session}-${process.pid}`;
  const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
  return {
    tmux,
    capture: () => tmux('capture-pane', '-p', '-t', session),
    // the server and its socket file go
    kill: () => {
      spawnSync('tmux', ['-L', socket, 'kill-server']);
      rmSync(path.join(process.env.TMUX_TMPDIR ?? '/tmp', `tmux-${process.getuid?.() ?? 0}`, socket), { force: true });
    },
  };
}

/** tickerPlan is two tasks that print a line a second. */
export function tickerPlan(name: string): string {
  return `name: ${name}
project: e2e
processes:
  - name: ticker
    count: 2
    command: ["sh", "-c", "while true; do echo tick $FACTORY_TASK; sleep 1; done"]
    resources: {cpus: 0.1, mem: 16Mi}
`;
}
