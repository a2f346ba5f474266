import { Args, Flags } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { drainAgent, type DrainResult } from '../../control/drain.js';

/** AgentsDrain marks an agent draining (nothing new lands there) and re-applies the recorded plans so its tasks move. */
export default class AgentsDrain extends FactoryCommand<typeof AgentsDrain> {
  static override summary = 'Drain an agent: new tasks avoid it and its tasks move elsewhere (--undo to accept tasks again).';
  static override examples = [
    '<%= config.bin %> agents drain h1',
    '<%= config.bin %> agents drain h1 --no-apply',
    '<%= config.bin %> agents drain h1 --undo',
  ];
  static override args = { agent: Args.string({ description: 'agent name from the inventory', required: true }) };
  static override flags = {
    undo: Flags.boolean({ summary: 'Clear the drain: the agent accepts new tasks again (tasks do not move back).', default: false }),
    apply: Flags.boolean({ summary: 'Re-apply the recorded plans after recording the drain (moves the tasks).', default: true, allowNo: true }),
  };

  protected async execute(): Promise<DrainResult> {
    const r = await this.onHost(
      (host) => host.drain(this.args.agent, this.flags.undo),
      () =>
        drainAgent({
          stateDir: this.flags.state,
          inventoryPath: this.flags.inventory,
          agent: this.args.agent,
          undo: this.flags.undo,
          apply: this.flags.apply,
          progress: (line) => this.progress(line),
        }),
      // the API's drain always re-applies; --no-apply is for the state here
      { alone: !this.flags.apply && !this.flags.undo ? 'agents drain --no-apply' : undefined },
    );
    const out = [r.draining ? `Agent ${r.agent} is draining.` : `Agent ${r.agent} accepts new tasks again.`];
    for (const m of r.moved) out.push(`  moved ${m.task} → ${m.to}`);
    if (r.draining && r.remaining.length) {
      out.push(`${r.remaining.length} task${r.remaining.length === 1 ? '' : 's'} still on ${r.agent}: ${r.remaining.slice(0, 10).join(', ')}${r.remaining.length > 10 ? ', …' : ''}`);
      const unplaced = r.apply?.unplaced ?? [];
      if (unplaced.length) out.push(`  nowhere else fits: ${unplaced[0]!.reason}`);
    }
    if (r.apply && !r.apply.ok) {
      for (const f of r.apply.results.filter((x) => !x.ok)) out.push(`  ${f.task} on ${f.agent}: ${f.action} failed: ${f.error}`);
      process.exitCode = 1;
    }
    this.human(out.join('\n'));
    return r;
  }
}
