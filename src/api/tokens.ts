/**
 * API tokens over the state's `tokens` table. A token is `fct_<12 hex id>_<secret>`; the state keeps
 * only the SHA-256 of the whole token. Scopes are ordered read < write < admin; a token with a
 * project sees and changes only that project's plans, tasks, logs and events.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { StateBackend } from '../state/backend.js';
import type { TokenRecord, TokenScope } from '../state/types.js';

/** TOKEN_RE is what a token looks like. */
export const TOKEN_RE = /^(fct_[0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$/;
/** TOKEN_ID_RE is what a token id looks like. */
export const TOKEN_ID_RE = /^fct_[0-9a-f]{12}$/;

const RANK: Record<TokenScope, number> = { read: 0, write: 1, admin: 2 };

/** scopeAllows says whether a token of scope `have` may do what needs `need`. */
export function scopeAllows(have: TokenScope, need: TokenScope): boolean {
  return RANK[have] >= RANK[need];
}

/** hashToken is the hex SHA-256 kept for a token. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** TokenView is a token as listed (never its secret or hash). */
export type TokenView = Omit<TokenRecord, 'hash'>;

/** viewOf strips the hash. */
export function viewOf(t: TokenRecord): TokenView {
  const { hash: _hash, ...rest } = t;
  return rest;
}

/** TokenStore creates, lists, verifies and revokes tokens. */
export class TokenStore {
  constructor(private readonly backend: StateBackend) {}

  /** verify returns the record of a valid token, else undefined (constant-time comparison). */
  verify(token: string): TokenRecord | undefined {
    const m = TOKEN_RE.exec(token);
    if (!m) return undefined;
    const rec = this.backend.view().get('tokens', m[1]!);
    if (!rec) return undefined;
    const want = Buffer.from(rec.hash, 'hex');
    const got = Buffer.from(hashToken(token), 'hex');
    return want.length === got.length && timingSafeEqual(want, got) ? rec : undefined;
  }

  list(project?: string): TokenView[] {
    return this.backend
      .view()
      .list('tokens')
      .filter((t) => project === undefined || t.project === project)
      .map(viewOf)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  get(id: string): TokenRecord | undefined {
    return this.backend.view().get('tokens', id);
  }

  /** create makes a token; the returned `token` is the only time its secret is shown. */
  async create(opts: { scope: TokenScope; project?: string; description?: string; by: string }): Promise<{ token: string; record: TokenView }> {
    const id = `fct_${randomBytes(6).toString('hex')}`;
    const token = `${id}_${randomBytes(24).toString('base64url')}`;
    const record: TokenRecord = {
      id,
      hash: hashToken(token),
      scope: opts.scope,
      ...(opts.project ? { project: opts.project } : {}),
      createdAt: new Date().toISOString(),
      createdBy: opts.by,
      ...(opts.description ? { description: opts.description } : {}),
    };
    await this.write(async () => {
      await this.backend.commit({
        ops: [{ table: 'tokens', key: id, value: record }],
        guards: [{ table: 'tokens', key: id, rev: 0 }],
        events: [{ topic: 'token', kind: 'token-created', message: `token ${id} (${opts.scope}${opts.project ? `, project ${opts.project}` : ''}) created`, by: opts.by, ...(opts.project ? { project: opts.project } : {}) }],
      });
    });
    return { token, record: viewOf(record) };
  }

  /** revoke deletes a token; false when there is none with that id. */
  async revoke(id: string, by: string): Promise<boolean> {
    let found = false;
    await this.write(async () => {
      const rec = this.backend.view().get('tokens', id);
      if (!rec) return;
      found = true;
      await this.backend.commit({
        ops: [{ table: 'tokens', key: id }],
        events: [{ topic: 'token', kind: 'token-revoked', message: `token ${id} revoked`, by, ...(rec.project ? { project: rec.project } : {}) }],
      });
    });
    return found;
  }

  /** hasRoot says whether `<state>/tokens/root` holds a valid admin token. */
  hasRoot(stateDir: string): boolean {
    try {
      return this.verify(fs.readFileSync(path.join(stateDir, 'tokens', 'root'), 'utf8').trim())?.scope === 'admin';
    } catch {
      return false;
    }
  }

  /**
   * ensureRoot makes sure `<state>/tokens/root` holds a valid admin token: on first start (or when the
   * file is gone or revoked) a new one is created and written there (mode 0600). Returns its path when
   * it was (re)written, else undefined.
   */
  async ensureRoot(stateDir: string): Promise<string | undefined> {
    const file = path.join(stateDir, 'tokens', 'root');
    if (this.hasRoot(stateDir)) return undefined;
    const { token } = await this.create({ scope: 'admin', description: 'root token (written to <state>/tokens/root)', by: 'control-host' });
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    fs.writeFileSync(`${file}.tmp`, `${token}\n`, { mode: 0o600 });
    fs.renameSync(`${file}.tmp`, file);
    fs.chmodSync(file, 0o600);
    return file;
  }

  private async write(fn: () => Promise<void>): Promise<void> {
    await this.backend.lock({ purpose: 'tokens', timeoutMs: 10_000 });
    try {
      await fn();
    } finally {
      await this.backend.unlock();
    }
  }
}
