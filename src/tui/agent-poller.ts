/**
 * AgentPoller asks the agents what runs every few seconds (the dashboard's `--refresh-interval`),
 * through a refresh function that records what they report in the state file, which the
 * StateFileWatcher then picks up. One refresh at a time; a slow one is never stacked.
 */

/** AgentPoller runs refresh() every intervalMs, never two at once. */
export class AgentPoller {
  private timer?: NodeJS.Timeout;
  private running = false;
  private stopped = false;

  constructor(
    private readonly intervalMs: number,
    private readonly refresh: () => Promise<void>,
    private readonly onError: (message: string) => void,
  ) {}

  /** start refreshes at once, then every interval; an interval of 0 disables it. */
  start(): void {
    if (this.intervalMs <= 0 || this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    void this.tick();
  }

  /** stop ends polling (an ongoing refresh finishes on its own). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** tick runs one refresh unless one is still running. */
  async tick(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    try {
      await this.refresh();
    } catch (err) {
      this.onError(`refresh failed: ${(err as Error)?.message ?? String(err)}`);
    } finally {
      this.running = false;
    }
  }
}
