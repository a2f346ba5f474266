import { Flags } from '@oclif/core';
import { FactoryCommand } from '../cli/base.js';
import { FactoryError } from '../errors.js';
import type { StreamEvent } from '../client/sse.js';

/** Events prints the control host's events after a revision; -f keeps following them. */
export default class Events extends FactoryCommand<typeof Events> {
  static override summary = "Print the control host's events (one a line); -f follows them.";
  static override examples = [
    '<%= config.bin %> events --control https://10.0.0.1:7443',
    '<%= config.bin %> events -f --since 120 --topic task,plan',
    '<%= config.bin %> events -f --json | jq .',
  ];
  static override flags = {
    follow: Flags.boolean({ char: 'f', summary: 'Keep printing new events until interrupted (reconnects after drops).', default: false }),
    since: Flags.integer({ summary: 'Only events after this revision (default: all the host keeps).', min: 0 }),
    topic: Flags.string({ summary: 'Only these topics, comma-separated (e.g. task,plan,agent).' }),
  };

  protected async execute(): Promise<undefined> {
    const client = await this.controlTarget();
    const { followEvents } = await import('../client/sse.js');
    const ac = new AbortController();
    const onSig = () => ac.abort();
    process.once('SIGINT', onSig);
    process.once('SIGTERM', onSig);
    // --json: one object a line, written as each event arrives (a following stream has no end to wrap)
    const json = this.flags.json;
    try {
      await followEvents(client, {
        since: this.flags.since,
        topics: this.flags.topic ? this.flags.topic.split(',').map((t) => t.trim()).filter(Boolean) : undefined,
        follow: this.flags.follow,
        signal: ac.signal,
        onEvent: (e) => {
          process.stdout.write(json ? JSON.stringify(eventJson(e)) + '\n' : formatEvent(e) + '\n');
        },
        onReset: (r) => {
          const msg = `events up to the asked revision are gone from the host's log; continuing${r.revision !== undefined ? ` from revision ${r.revision}` : ''}`;
          if (json) process.stdout.write(JSON.stringify({ reset: true, revision: r.revision ?? null }) + '\n');
          else this.progress(`factory: ${msg}`);
        },
        onReconnect: ({ delayMs, error }) => this.progress(`factory: ${error.message}; reconnecting in ${(delayMs / 1000).toFixed(1)} s`),
      });
    } catch (err) {
      if (err instanceof FactoryError) throw err;
      throw new FactoryError(`events: ${(err as Error).message}`, { code: 'E_EVENTS', cause: err });
    } finally {
      process.off('SIGINT', onSig);
      process.off('SIGTERM', onSig);
    }
    // the lines are the output; `run` prints nothing more with --json
    return undefined;
  }
}

/** eventJson is an event as one JSON line: its revision and type over the fields of its data. */
function eventJson(e: StreamEvent): Record<string, unknown> {
  const data = e.data && typeof e.data === 'object' && !Array.isArray(e.data) ? (e.data as Record<string, unknown>) : { data: e.data };
  return { rev: e.revision, ...(e.type !== 'message' ? { event: e.type } : {}), ...data };
}

/** formatEvent is an event as one human line: revision, time, topic, kind, message. */
export function formatEvent(e: StreamEvent): string {
  const d = (e.data && typeof e.data === 'object' ? e.data : {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');
  const topic = str(d.topic) || (e.type !== 'message' ? e.type : '');
  const message = str(d.message) || (typeof e.data === 'string' ? e.data : e.data === undefined ? '' : JSON.stringify(e.data));
  return [String(e.revision).padStart(6), str(d.at), topic, str(d.kind), message].filter((s) => s !== '').join('  ');
}
