/**
 * What every step of reaching an agent over SSH shares: a bound in time, and an error that names
 * the agent and says what to fix.
 */
import { AgentError } from '../../errors.js';

/** withTimeout settles like p, or rejects with onTimeout() once ms have passed. */
export function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(onTimeout()), ms);
    t.unref?.();
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

/** StepError makes the AgentError of one failed step: a message, a code, what to do and the cause. */
export type StepError = (message: string, code: string, hint?: string, cause?: unknown) => AgentError;

/** stepErrors returns the StepError of one agent: each error it makes names that agent. */
export function stepErrors(agent: string): StepError {
  return (message, code, hint, cause) => new AgentError(agent, message, { code, hint, cause });
}
