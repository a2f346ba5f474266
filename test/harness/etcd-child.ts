/** A child process that opens an etcd state (tests of what happens to another process: a writer, a leader). */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const OPEN = JSON.stringify(path.resolve('src/state/etcd-backend.ts'));

/**
 * etcdChild runs a script in a child Node (tsx) with EtcdBackend imported, and follows the lines it
 * prints on stdout: waitFor resolves on the first line matching, and rejects on a timeout or when the
 * child exits first.
 */
export function etcdChild(script: string, env: Record<string, string> = {}): { proc: ChildProcess; lines: string[]; waitFor: (re: RegExp, ms?: number) => Promise<string> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', '-e', `const { EtcdBackend } = await import(${OPEN});\n${script}`], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const lines: string[] = [];
  let buf = '';
  const listeners = new Set<() => void>();
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
    for (const l of listeners) l();
  });
  const waitFor = (re: RegExp, ms = 30_000) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const hit = lines.find((l) => re.test(l));
        if (hit) {
          listeners.delete(check);
          clearTimeout(timer);
          resolve(hit);
        }
      };
      const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${ms} ms; got: ${lines.join(' | ')}`)), ms);
      listeners.add(check);
      proc.once('exit', (code) => setTimeout(() => (listeners.has(check) ? reject(new Error(`child exited ${code} before ${re}; got: ${lines.join(' | ')}`)) : undefined), 50));
      check();
    });
  return { proc, lines, waitFor };
}
