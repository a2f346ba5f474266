/**
 * EpochFence keeps, on the agent, the newest leadership epoch seen per factory state, and refuses a
 * call that carries an older one: a control host deposed on etcd (its leader key's create revision
 * is its epoch) cannot start or stop a task here, even over a session it opened while it led.
 *
 * Executors are one process per session, so the newest epoch is kept on disk, shared by every
 * session on the workDir: one empty file per epoch under `<workDir>/epochs/<state>/` (creating a
 * file never lowers the newest, whatever the interleaving of two sessions; older ones are deleted).
 * A call without an epoch (a host on a file state, one-shot commands) is never checked.
 */
import fs from 'node:fs';
import path from 'node:path';
import { FactoryError } from '../errors.js';

/** EPOCH_DIGITS pads the epoch files' names so that they sort as numbers. */
const EPOCH_DIGITS = 16;

/** EpochFence checks calls' epochs against the newest one recorded under a workDir for a state. */
export class EpochFence {
  /** refused counts the calls this fence refused (this session). */
  refused = 0;
  private newest = 0;
  private readonly dir: string;
  private readonly logFile: string;

  constructor(
    workDir: string,
    private readonly state: string | undefined,
    private readonly log: (line: string) => void,
  ) {
    this.dir = path.join(workDir, 'epochs', state ?? 'no-state');
    this.logFile = path.join(workDir, 'fencing.log');
  }

  /** newestSeen reads the newest epoch recorded on disk by any session (and this one's). */
  newestSeen(): number {
    let names: string[] = [];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      /* none recorded yet */
    }
    for (const n of names) {
      const e = Number(n);
      if (Number.isSafeInteger(e) && e > this.newest) this.newest = e;
    }
    return this.newest;
  }

  /** admit records epoch when it is the newest, or throws E_FENCED (and logs the refusal) when it is older. */
  admit(epoch: number, call: string): void {
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw new FactoryError(`${call}: bad epoch ${JSON.stringify(epoch)}`, { code: 'E_BAD_REQUEST' });
    const newest = this.newestSeen();
    if (epoch < newest) {
      this.refused += 1;
      const line = `executor: fencing: refused ${call} from epoch ${epoch} of state ${this.state ?? '-'}: epoch ${newest} leads now (${this.refused} refused by this session)`;
      this.log(line);
      try {
        fs.appendFileSync(this.logFile, `${new Date().toISOString()} pid ${process.pid} ${line}\n`);
      } catch {
        /* the line on stderr is enough */
      }
      throw new FactoryError(`${call} refused: this call carries leadership epoch ${epoch}, but a control host of epoch ${newest} leads state ${this.state ?? '-'} now`, {
        code: 'E_FENCED',
        hint: 'this control host was deposed: it must stop acting (a new leader does the work)',
      });
    }
    if (epoch === newest) return;
    fs.mkdirSync(this.dir, { recursive: true });
    fs.writeFileSync(path.join(this.dir, String(epoch).padStart(EPOCH_DIGITS, '0')), '');
    this.newest = epoch;
    for (const n of fs.readdirSync(this.dir)) {
      if (Number(n) < epoch) fs.rmSync(path.join(this.dir, n), { force: true });
    }
  }
}
