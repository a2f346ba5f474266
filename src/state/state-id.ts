/** State ids: `st-` and 12 hex digits, made once when a state is created. */
import { randomBytes } from 'node:crypto';

/** STATE_ID_RE matches a state id (agents refuse any other shape in a label). */
export const STATE_ID_RE = /^st-[0-9a-f]{12}$/;

/** newStateId returns a fresh random state id. */
export function newStateId(): string {
  return `st-${randomBytes(6).toString('hex')}`;
}
