import { Args, Flags } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { table } from '../../cli/render.js';
import { pushImage, type ImagePushResult } from '../../control/images.js';

/** ImagePush ships an image from this host's Docker engine to the agents' engines (no registry needed). */
export default class ImagePush extends FactoryCommand<typeof ImagePush> {
  static override summary = "Ship an image from this host's Docker engine to the agents; skipped where the same image id is present.";
  static override description =
    'The image is saved once (docker save), sent over the executor protocol in chunks, loaded on each agent and verified: ' +
    'the archive by sha256, the loaded image by its id. Agents that already have the image with the same id are skipped. ' +
    'The local engine is FACTORY_DOCKER_HOST, else DOCKER_HOST, else /var/run/docker.sock.';
  static override examples = [
    '<%= config.bin %> image push nginx:1.25',
    '<%= config.bin %> image push registry.local/app:2 --agents h1,h2',
    '<%= config.bin %> image push app:2 --force --json',
  ];
  static override args = { image: Args.string({ description: 'image name or id in the local engine', required: true }) };
  static override flags = {
    agents: Flags.string({ summary: 'Comma-separated agent names (default: every agent of the inventory).' }),
    force: Flags.boolean({ summary: 'Send the image even where the same id is present.', default: false }),
  };

  protected async execute(): Promise<ImagePushResult> {
    const agents = this.flags.agents?.split(',').map((a) => a.trim()).filter(Boolean);
    const r = await pushImage({
      image: this.args.image,
      stateDir: this.flags.state,
      inventoryPath: this.flags.inventory,
      agents,
      force: this.flags.force,
      progress: (line) => this.progress(line),
    });
    this.human(
      table(
        ['AGENT', 'RESULT', 'IMAGE ID', 'DETAIL'],
        r.agents.map((a) => [a.agent, a.action, a.id?.slice(0, 19) ?? '', a.error ?? (a.action === 'loaded' ? `${a.bytes} bytes in ${a.ms} ms` : '')]),
      ),
    );
    if (!r.ok) process.exitCode = 1;
    return r;
  }
}
