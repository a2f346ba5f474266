/** emptyState returns an empty state document, as the dashboard shows a state that does not exist yet. */
import type { StateData } from '../state/types.js';

export function emptyState(): StateData {
  return { version: 2, agents: {}, tasks: {}, plans: {}, events: [] };
}
