/**
 * Colours of states in the dashboard: green is fine, yellow is in between, red needs a look, grey
 * is over. Terminals without colour still show the words.
 */

/** stateColor returns the ink colour name for an agent, task, power or health state, or a job run's. */
export function stateColor(state: string | undefined): string | undefined {
  switch (state) {
    case 'ready':
    case 'running':
    case 'healthy':
    case 'finished':
    case 'succeeded':
      return 'green';
    case 'draining':
    case 'pending':
    case 'starting':
    case 'paused':
    case 'imaging':
    case 'unknown':
    case 'claimed':
    case 'waiting':
    case 'missed':
    case 'suspended':
    case 'waiting-promotion':
      return 'yellow';
    case 'lost':
    case 'down':
    case 'failed':
    case 'unhealthy':
    case 'crashed':
    case 'crash-loop':
    case 'reverted':
      return 'red';
    case 'exited':
    case 'stopped':
    case 'shut off':
    case 'aborted':
      return 'gray';
    default:
      return undefined;
  }
}

/** eventColor returns the colour of an event line by its kind. */
export function eventColor(kind: string): string | undefined {
  if (/failed|lost|missing|duplicate|crash-loop/.test(kind)) return 'red';
  if (/restarted|draining|adopted/.test(kind)) return 'yellow';
  if (/started|back|applied|undrained/.test(kind)) return 'green';
  return undefined;
}
