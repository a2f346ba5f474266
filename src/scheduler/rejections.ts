/**
 * Rejections as data: a checker that excludes an agent names a cause, and a tally counts the agents per
 * cause so that "why isn't it placed?" is answered with numbers (`no agent fits: mem: 7 agents short; …`).
 */

/** RejectionWording is how a cause reads in an unplaced reason: `mem: 7 agents short`, `driver docker: 2 agents lack it`. */
export type RejectionWording = 'bare' | 'agents' | 'short' | 'lack' | 'in-use' | 'at-limit';

/** Rejection names why one checker excluded an agent. */
export interface Rejection {
  /** cause is the key counted in Unplaced.causes, e.g. `mem` or `constraint rack != r9`. */
  cause: string;
  wording: RejectionWording;
}

/** NO_AGENTS_REASON is the unplaced reason when the inventory has no agents at all. */
export const NO_AGENTS_REASON = 'no agents in the inventory';

/** RejectionTally counts rejected agents per cause, remembering the first-seen order. */
export class RejectionTally {
  private readonly counts = new Map<string, { n: number; wording: RejectionWording; order: number }>();

  /** add counts one agent under a rejection's cause. */
  add(r: Rejection): void {
    const entry = this.counts.get(r.cause);
    if (entry) entry.n += 1;
    else this.counts.set(r.cause, { n: 1, wording: r.wording, order: this.counts.size });
  }

  /** causes returns cause → number of agents. */
  causes(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [cause, { n }] of this.counts) out[cause] = n;
    return out;
  }

  /** parts renders each cause with its count, most common first: `mem: 7 agents short`. */
  parts(): string[] {
    return [...this.counts.entries()]
      .sort(([, a], [, b]) => b.n - a.n || a.order - b.order)
      .map(([cause, { n, wording }]) => `${cause}: ${wordCount(n, wording)}`);
  }

  /** describe renders the tally as one sentence, most common cause first: `no agent fits: mem: 7 agents short; …`. */
  describe(): string {
    const parts = this.parts();
    return parts.length === 0 ? 'no agent fits' : `no agent fits: ${parts.join('; ')}`;
  }
}

function wordCount(n: number, wording: RejectionWording): string {
  const agents = `${n} ${n === 1 ? 'agent' : 'agents'}`;
  switch (wording) {
    case 'bare':
      return `${n}`;
    case 'agents':
      return agents;
    case 'short':
      return `${agents} short`;
    case 'lack':
      return `${agents} ${n === 1 ? 'lacks' : 'lack'} it`;
    case 'in-use':
      return `${agents} ${n === 1 ? 'has' : 'have'} it in use`;
    case 'at-limit':
      return `${agents} at limit`;
  }
}
