/**
 * What the etcd backend needs around the `etcd3` client: the `etcd://` location, the connection
 * options (TLS and auth from FACTORY_ETCD_* variables), the key layout under the state's prefix, and
 * one place that turns the client's errors into StateErrors that name etcd.
 *
 * `etcd3` (gRPC, protobufs read from its own folder) is loaded only when an etcd state is opened.
 */
import fs from 'node:fs';
import type { Etcd3, IKeyValue, IOptions } from 'etcd3';
import { StateError } from '../errors.js';
import type { TableName } from './backend.js';
import { TABLES } from './backend.js';

/** EtcdLocation is a parsed `etcd://host:port[,host:port…]/prefix`. */
export interface EtcdLocation {
  /** endpoints are `host:port` (port 2379 when left out). */
  endpoints: string[];
  /** prefix starts with `/` and has no trailing `/` (default `/factory`). */
  prefix: string;
}

/** DEFAULT_PREFIX is the prefix of an `etcd://host:port` location without a path. */
export const DEFAULT_PREFIX = '/factory';

/** isEtcdLocation says whether a `--state` value names an etcd state. */
export function isEtcdLocation(location: string): boolean {
  return /^etcd:\/\//i.test(location);
}

/** parseEtcdLocation parses `etcd://host:port[,host:port…]/prefix`; throws E_STATE_BACKEND with the expected shape. */
export function parseEtcdLocation(location: string): EtcdLocation {
  const m = /^etcd:\/\/([^/]*)(\/.*)?$/i.exec(location);
  const bad = (why: string) =>
    new StateError(`bad etcd state location ${JSON.stringify(location)}: ${why}`, {
      code: 'E_STATE_BACKEND',
      hint: 'write it as etcd://HOST:PORT[,HOST:PORT…]/PREFIX, e.g. etcd://10.0.0.1:2379,10.0.0.2:2379/factory',
    });
  if (!m) throw bad('not an etcd:// URL');
  const endpoints = m[1]!.split(',').map((h) => h.trim()).filter(Boolean);
  if (endpoints.length === 0) throw bad('no host');
  const out: string[] = [];
  for (const h of endpoints) {
    const hm = /^(\[[0-9a-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/i.exec(h);
    if (!hm) throw bad(`host ${JSON.stringify(h)} is not HOST or HOST:PORT`);
    const port = hm[2] === undefined ? 2379 : Number(hm[2]);
    if (port < 1 || port > 65535) throw bad(`port ${hm[2]} is out of range`);
    out.push(`${hm[1]}:${port}`);
  }
  const path = (m[2] ?? '').replace(/\/+$/, '');
  if (/[\s\0]/.test(path)) throw bad('the prefix has blanks or NUL');
  return { endpoints: out, prefix: path === '' ? DEFAULT_PREFIX : path.replace(/^\/+/, '/') };
}

/** formatEtcdLocation is the inverse of parseEtcdLocation (what `location` shows). */
export function formatEtcdLocation(loc: EtcdLocation): string {
  return `etcd://${loc.endpoints.join(',')}${loc.prefix}`;
}

/** EtcdSettings are the knobs of the etcd backend, from FACTORY_ETCD_* variables. */
export interface EtcdSettings {
  /** timeoutMs bounds each etcd call (FACTORY_ETCD_TIMEOUT, seconds; default 2). */
  timeoutMs: number;
  /** lockTtl is the writers' lock lease in seconds (FACTORY_ETCD_LOCK_TTL; default 5). */
  lockTtl: number;
  /** maxRequestBytes is the largest commit sent (FACTORY_ETCD_MAX_REQUEST_BYTES; default etcd's 1.5 MiB). */
  maxRequestBytes: number;
  /** pageSize is how many keys one read of the initial load asks for (default 2000). */
  pageSize: number;
}

/** etcdSettingsFromEnv reads the FACTORY_ETCD_* knobs. */
export function etcdSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): EtcdSettings {
  const num = (name: string, dflt: number, scale = 1) => {
    const v = Number(env[name]);
    return env[name] !== undefined && Number.isFinite(v) && v > 0 ? v * scale : dflt;
  };
  return {
    timeoutMs: num('FACTORY_ETCD_TIMEOUT', 2000, 1000),
    lockTtl: Math.max(1, Math.round(num('FACTORY_ETCD_LOCK_TTL', 5))),
    maxRequestBytes: num('FACTORY_ETCD_MAX_REQUEST_BYTES', 1.5 * 1024 * 1024),
    pageSize: num('FACTORY_ETCD_PAGE_SIZE', 2000),
  };
}

/**
 * etcdClientOptions builds the client's options: TLS when FACTORY_ETCD_CA is set (with a client
 * certificate from FACTORY_ETCD_CERT and FACTORY_ETCD_KEY), user and password auth from
 * FACTORY_ETCD_USER and FACTORY_ETCD_PASSWORD, a deadline on every call, and retries that move to
 * the next member (a member that is down or without a leader).
 */
export async function etcdClientOptions(loc: EtcdLocation, settings: EtcdSettings, env: NodeJS.ProcessEnv = process.env): Promise<IOptions> {
  const read = (name: string): Buffer | undefined => {
    const file = env[name];
    if (!file) return undefined;
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new StateError(`cannot read ${name} (${file}): ${(err as Error).message}`, { code: 'E_STATE_BACKEND', hint: `${name} names a PEM file for the etcd connection` });
    }
  };
  const ca = read('FACTORY_ETCD_CA');
  const cert = read('FACTORY_ETCD_CERT');
  const key = read('FACTORY_ETCD_KEY');
  if ((cert && !key) || (key && !cert)) {
    throw new StateError('FACTORY_ETCD_CERT and FACTORY_ETCD_KEY go together (the client certificate for etcd and its key)', { code: 'E_STATE_BACKEND' });
  }
  if (cert && !ca) throw new StateError('FACTORY_ETCD_CERT needs FACTORY_ETCD_CA (the CA that signed the etcd members)', { code: 'E_STATE_BACKEND' });
  const user = env.FACTORY_ETCD_USER;
  if (user && env.FACTORY_ETCD_PASSWORD === undefined) throw new StateError('FACTORY_ETCD_USER needs FACTORY_ETCD_PASSWORD', { code: 'E_STATE_BACKEND' });
  const { handleWhen, retry, ConstantBackoff, ExponentialBackoff, noop } = await import('cockatiel');
  const { isRecoverableError } = await import('etcd3');
  const scheme = ca ? 'https' : 'http';
  return {
    hosts: loc.endpoints.map((e) => `${scheme}://${e}`),
    ...(ca ? { credentials: { rootCertificate: ca, ...(key ? { privateKey: key, certChain: cert } : {}) } } : {}),
    ...(user ? { auth: { username: user, password: env.FACTORY_ETCD_PASSWORD ?? '' } } : {}),
    dialTimeout: settings.timeoutMs,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + settings.timeoutMs }),
    // a watch response may carry many revisions of large transactions (gRPC's default is 4 MiB)
    grpcOptions: { 'grpc.max_receive_message_length': -1, 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': settings.timeoutMs },
    // every retry goes to another member; no circuit breaker keeps a member that came back shut out,
    // and a broken watch tries again within a second (the client's default waits up to 30 s)
    faultHandling: {
      host: () => noop,
      global: retry(handleWhen(isRecoverableError), { maxAttempts: Math.max(1, loc.endpoints.length - 1), backoff: new ConstantBackoff(50) }),
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 1000 }).next(),
    },
  };
}

/** connectEtcd loads the client library and connects (lazily: the first call dials). */
export async function connectEtcd(loc: EtcdLocation, settings: EtcdSettings): Promise<Etcd3> {
  const { Etcd3 } = await import('etcd3');
  return new Etcd3(await etcdClientOptions(loc, settings));
}

/** etcdError turns an error of the etcd client into a StateError naming etcd and its members. */
export function etcdError(err: unknown, what: string, loc: EtcdLocation, opts: { unknownOutcome?: boolean } = {}): StateError {
  if (err instanceof StateError) return err;
  const e = err as Error & { code?: number; details?: string };
  const msg = String(e?.message ?? err).split('\n')[0]!;
  const members = loc.endpoints.join(', ');
  if (/too many operations in txn request/i.test(msg)) {
    return new StateError(`etcd refused ${what}: too many operations in one transaction (${msg})`, {
      code: 'E_STATE_TOO_LARGE',
      hint: "a commit is one etcd transaction with a key per record and per event: raise the members' --max-txn-ops (src/state/README.md); nothing was written",
      cause: err,
    });
  }
  if (/request is too large|ResourceExhausted|message larger than max/i.test(msg)) {
    return new StateError(`etcd refused ${what}: the request is too large (${msg})`, {
      code: 'E_STATE_TOO_LARGE',
      hint: "etcd takes at most --max-request-bytes (1.5 MiB by default) per request; nothing was written",
      cause: err,
    });
  }
  if (/permission denied|authentication failed|invalid auth token|user name not found|Unauthenticated/i.test(msg)) {
    return new StateError(`etcd at ${members} refused ${what}: ${msg}`, { code: 'E_STATE_AUTH', hint: 'check FACTORY_ETCD_USER / FACTORY_ETCD_PASSWORD and the role of that user on the prefix', cause: err });
  }
  // the client's own errors (GRPC…, Etcd…, a broken circuit) and the server's (etcdserver: no leader,
  // request timed out, leader changed…) mean etcd could not do it now; anything else is a bug of ours
  const name = e?.constructor?.name ?? '';
  const unavailable = /^(GRPC|Etcd|BrokenCircuit|ClientClosed)/.test(name) || /etcdserver:|ECONNREFUSED|UNAVAILABLE|DEADLINE_EXCEEDED/i.test(msg);
  const outcome = opts.unknownOutcome ? '; the change may or may not be recorded: the state shows it once etcd answers again' : '';
  return new StateError(`${unavailable ? 'etcd did not answer' : 'etcd client failed'} ${what} (members ${members}): ${msg}${outcome}`, {
    code: unavailable ? 'E_STATE_UNAVAILABLE' : 'E_STATE_ETCD',
    hint: unavailable ? 'is a quorum of the etcd members up and reachable? (etcdctl endpoint health)' : 'see the etcd members\' logs',
    cause: err,
  });
}

/** prefixEnd is the first key after every key that starts with prefix (etcd's range end for a prefix). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** EtcdKey is what a key under the prefix holds. */
export type EtcdKey =
  | { kind: 'record'; table: TableName; key: string }
  | { kind: 'event'; rev: number }
  | { kind: 'id' | 'counter' | 'dropped' | 'lock' };

/** REV_DIGITS is the width of an event key's revision (zero-padded, so keys sort by revision). */
const REV_DIGITS = 12;

/**
 * EtcdKeys is the key layout of one state: `<prefix>/<table>/<key>` per record,
 * `<prefix>/events/<rev>` per event, `<prefix>/meta/{id,rev,dropped}`, `<prefix>/lock`, `<prefix>/leader`, `<prefix>/leader-beat`,
 * and `<prefix>/hosts/<id>` per running control host (not part of the state: parse ignores them).
 */
export class EtcdKeys {
  readonly all: Buffer;
  readonly allEnd: Buffer;
  readonly id: Buffer;
  readonly counter: Buffer;
  readonly dropped: Buffer;
  readonly lock: Buffer;
  /** leader is the control hosts' election key (etcd-leader.ts). */
  readonly leader: Buffer;
  /** leaderBeat is the leader's heartbeat, rewritten every renewal: standbys watch its revision (etcd-leader.ts). */
  readonly leaderBeat: Buffer;
  /** hosts is the prefix of the control hosts' registrations (etcd-hosts.ts), hostsEnd its range end. */
  readonly hosts: Buffer;
  readonly hostsEnd: Buffer;
  readonly events: Buffer;
  readonly eventsEnd: Buffer;
  private readonly head: string;

  constructor(readonly prefix: string) {
    this.head = `${prefix}/`;
    this.all = Buffer.from(this.head);
    this.allEnd = prefixEnd(this.all);
    this.id = Buffer.from(`${prefix}/meta/id`);
    this.counter = Buffer.from(`${prefix}/meta/rev`);
    this.dropped = Buffer.from(`${prefix}/meta/dropped`);
    this.lock = Buffer.from(`${prefix}/lock`);
    this.leader = Buffer.from(`${prefix}/leader`);
    this.leaderBeat = Buffer.from(`${prefix}/leader-beat`);
    this.hosts = Buffer.from(`${prefix}/hosts/`);
    this.hostsEnd = prefixEnd(this.hosts);
    this.events = Buffer.from(`${prefix}/events/`);
    this.eventsEnd = prefixEnd(this.events);
  }

  record(table: TableName, key: string): Buffer {
    return Buffer.from(`${this.head}${table}/${key}`);
  }

  /** host is the registration key of the control host with that id. */
  host(id: string): Buffer {
    return Buffer.from(`${this.head}hosts/${id}`);
  }

  event(rev: number): Buffer {
    return Buffer.from(`${this.head}events/${String(rev).padStart(REV_DIGITS, '0')}`);
  }

  /** parse says what a key holds (undefined: not one of ours). */
  parse(raw: Buffer | string): EtcdKey | undefined {
    const k = typeof raw === 'string' ? raw : raw.toString('utf8');
    if (!k.startsWith(this.head)) return undefined;
    const rest = k.slice(this.head.length);
    const slash = rest.indexOf('/');
    if (slash < 0) return rest === 'lock' ? { kind: 'lock' } : undefined;
    const first = rest.slice(0, slash);
    const tail = rest.slice(slash + 1);
    if (first === 'events') return /^\d+$/.test(tail) ? { kind: 'event', rev: Number(tail) } : undefined;
    if (first === 'meta') return tail === 'id' ? { kind: 'id' } : tail === 'rev' ? { kind: 'counter' } : tail === 'dropped' ? { kind: 'dropped' } : undefined;
    if ((TABLES as readonly string[]).includes(first) && tail !== '') return { kind: 'record', table: first as TableName, key: tail };
    return undefined;
  }
}

/** CounterValue is what `<prefix>/meta/rev` holds: the newest revision and the commit that wrote it. */
export interface CounterValue {
  rev: number;
  /** txn is a random id of the commit (a commit whose answer was lost recognises itself by it). */
  txn?: string;
}

/** parseCounter reads the counter's value (rev 0 when absent). */
export function parseCounter(kv: IKeyValue | undefined): CounterValue {
  if (!kv) return { rev: 0 };
  try {
    const v = JSON.parse(kv.value.toString('utf8')) as CounterValue;
    return typeof v.rev === 'number' ? v : { rev: 0 };
  } catch {
    return { rev: 0 };
  }
}
