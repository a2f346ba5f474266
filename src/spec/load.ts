/**
 * Loading plans: read a file safely (size, binary, UTF-8), parse YAML keeping node positions, validate
 * with the zod schema, map every issue to `file:line:col: path: message`, and build PlanSpec.
 * The YAML/position machinery here (SpecSource) is shared with src/spec/inventory.ts.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type Pair } from 'yaml';
import type * as z from 'zod';
import { SpecError, type SpecIssue } from '../errors.js';
import { expandPlanPaths, fileIssue, MAX_SPEC_FILE_BYTES, readSpecFile } from './read.js';
import type { Driver, GroupKind, TaskResources } from '../scheduler/types.js';
import type { GroupSpec, PlanSpec } from './model.js';
import { parsePlainYaml } from './plain-yaml.js';
import {
  GROUP_RESOURCE_KEYS,
  planSchema,
  SCALAR_NAME_RE,
  UNKNOWN_KEYS_MARK,
  type RawPlan,
} from './schema.js';

// reading plan files (no YAML, no zod) lives in ./read.js, which the CLI's fast path bundles
export { expandPlanPaths, MAX_SPEC_FILE_BYTES, readSpecFile } from './read.js';
/** MAX_ALIAS_COUNT bounds YAML alias expansion (refuses "billion laughs" alias bombs). */
export const MAX_ALIAS_COUNT = 100;
/** DEFAULT_PROCESS_CPUS is the cpus a process or container task asks for when `resources.cpus` is absent. */
export const DEFAULT_PROCESS_CPUS = 0.1;
/** DEFAULT_PROCESS_MEM is the mem (bytes) a process or container task asks for when `resources.mem` is absent: 64Mi. */
export const DEFAULT_PROCESS_MEM = 64 * 1024 * 1024;
/** DEFAULT_STOP_GRACE_MS is the default `stopGrace`: 10s. */
export const DEFAULT_STOP_GRACE_MS = 10_000;
/** DEFAULT_HEALTH_INTERVAL_MS is the default `health.interval`: 10s. */
export const DEFAULT_HEALTH_INTERVAL_MS = 10_000;
/** JOBS_WARNING is the warning a plan with `jobs` carries. */
export const JOBS_WARNING = 'jobs are run by the control host (factory control serve), not by plan apply; ignored';

type PathSeg = string | number;

/** formatPath renders a document path as `processes[0].resources.mem`. */
export function formatPath(path: readonly PathSeg[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

/** levenshtein is the edit distance between two strings. */
export function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] ?? 0;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j] ?? 0;
      prev[j] = Math.min((prev[j] ?? 0) + 1, (prev[j - 1] ?? 0) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length] ?? 0;
}

/** suggestKey returns the known key closest to `key` (edit distance ≤ 2, or a shared prefix of ≥ 3 characters). */
export function suggestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  const k = key.toLowerCase();
  for (const cand of known) {
    const c = cand.toLowerCase();
    let score = levenshtein(k, c);
    if (score > 2) {
      const prefix = k.length >= 3 && c.length >= 3 && (c.startsWith(k) || k.startsWith(c));
      if (!prefix) continue;
      score = 3;
    }
    if (score < bestScore) {
      best = cand;
      bestScore = score;
    }
  }
  return best;
}

/** unknownKeyMessage is the message for an unknown key, with a did-you-mean when one is close. */
export function unknownKeyMessage(key: string, known: readonly string[], what = 'key'): string {
  const s = suggestKey(key, known);
  return `unknown ${what} '${key}'${s ? ` (did you mean '${s}'?)` : ''}`;
}

/**
 * SpecSource is one parsed YAML file: its document, line counter and the issues found so far. It turns
 * document paths into positions (the deepest node that exists on the path).
 */
export class SpecSource {
  /** issues collected for this file, in the order found (sorted by position on throw). */
  readonly issues: SpecIssue[] = [];
  /** warnings collected for this file. */
  readonly warnings: SpecIssue[] = [];

  private parsed?: { doc: Document.Parsed; lines: LineCounter };

  private constructor(
    /** file is the path as given, for messages. */
    readonly file: string,
    parsed: { doc: Document.Parsed; lines: LineCounter } | undefined,
    /** data is the document as plain JS (aliases expanded). */
    readonly data: unknown,
    private readonly text: string,
  ) {
    this.parsed = parsed;
  }

  /** doc is the parsed YAML document (parsed on first use when the fast path read the data). */
  get doc(): Document.Parsed {
    return this.full().doc;
  }

  private get lines(): LineCounter {
    return this.full().lines;
  }

  private full(): { doc: Document.Parsed; lines: LineCounter } {
    if (!this.parsed) {
      const lines = new LineCounter();
      const doc = parseDocument(this.text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, merge: true });
      this.parsed = { doc, lines };
    }
    return this.parsed;
  }

  /**
   * SpecSource.parse parses YAML text. Throws SpecError for text that is not usable: binary, too big,
   * YAML syntax errors (all of them), duplicate keys, alias bombs, empty documents and non-mapping tops.
   */
  static parse(text: string, file: string, what: 'plan' | 'inventory'): SpecSource {
    if (Buffer.byteLength(text, 'utf8') > MAX_SPEC_FILE_BYTES) {
      throw new SpecError([fileIssue(file, `file is larger than 4 MiB; refusing to read it as a ${what}`)]);
    }
    if (text.slice(0, 8192).includes('\u0000')) {
      throw new SpecError([fileIssue(file, `not a text file (NUL byte); expected a YAML ${what}`)]);
    }
    // Fast path: plain YAML (what generators write) is read without building a document; positions
    // are computed from a full parse only if an issue needs one.
    const plain = parsePlainYaml(text);
    if (plain !== undefined) return new SpecSource(file, undefined, plain, text);
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, merge: true });
    const pos = (offset: number) => lines.linePos(offset);
    if (doc.errors.length > 0) {
      throw new SpecError(
        doc.errors.map((e) => {
          const { line, col } = pos(e.pos[0]);
          let message = e.message.split('\n')[0] ?? e.message;
          if (e.code === 'MULTIPLE_DOCS') message = `a ${what} file holds one YAML document; found more than one (---)`;
          if (e.code === 'DUPLICATE_KEY') {
            const key = /^\s*("[^"]*"|'[^']*'|[^:\n]+?)\s*:/.exec(text.slice(e.pos[0]))?.[1];
            message = key ? `duplicate key '${key.replace(/^["']|["']$/g, '')}'` : 'duplicate key';
          }
          return { file, line, col, path: '', message };
        }),
      );
    }
    const empty =
      what === 'plan' ? "empty plan: expected a mapping with at least 'name'" : "empty inventory: expected a mapping with 'idcs'";
    const contents = doc.contents;
    if (contents === null || (isScalar(contents) && (contents.value === null || contents.value === undefined))) {
      throw new SpecError([fileIssue(file, empty)]);
    }
    if (!isMap(contents)) {
      const { line, col } = contents.range ? pos(contents.range[0]) : { line: 1, col: 1 };
      const got = isSeq(contents) ? 'a list' : isScalar(contents) ? `a ${typeof contents.value}` : 'something else';
      throw new SpecError([{ file, line, col, path: '', message: `expected a mapping at the top level of the ${what}, got ${got}` }]);
    }
    let data: unknown;
    try {
      data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      const message = /alias/i.test(msg)
        ? `refusing to expand YAML aliases: more than ${MAX_ALIAS_COUNT} expansions (an alias bomb?)`
        : `cannot read YAML: ${msg}`;
      throw new SpecError([fileIssue(file, message)]);
    }
    return new SpecSource(file, { doc, lines }, data, text);
  }

  private resolve(node: unknown): unknown {
    return isAlias(node) ? node.resolve(this.doc) : node;
  }

  /** locate finds the deepest node on `path`; `key` is the key node of the last segment when it exists. */
  locate(path: readonly PathSeg[]): { node: Node | null; key: Node | null; complete: boolean } {
    let cur: unknown = this.doc.contents;
    let key: Node | null = null;
    let last: Node | null = (this.doc.contents as Node | null) ?? null;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i];
      cur = this.resolve(cur);
      key = null;
      if (isMap(cur)) {
        const pair = (cur.items as Pair[]).find((p) => {
          const k = isScalar(p.key) ? p.key.value : p.key;
          return String(k) === String(seg);
        });
        if (!pair) return { node: last, key: null, complete: false };
        key = (pair.key as Node | null) ?? null;
        const value = pair.value as Node | null;
        cur = value;
        if (value && (value as Node).range) last = value;
        else if (key) last = key;
      } else if (isSeq(cur) && typeof seg === 'number') {
        const item = cur.items[seg] as Node | undefined;
        if (!item) return { node: last, key: null, complete: false };
        cur = item;
        last = item;
      } else {
        return { node: last, key: null, complete: false };
      }
    }
    return { node: last, key, complete: true };
  }

  /** position is the 1-based line and column of a node (1:1 when it has no range). */
  position(node: Node | null | undefined): { line: number; col: number } {
    if (!node?.range) return { line: 1, col: 1 };
    return this.lines.linePos(node.range[0]);
  }

  /** positionOf is the position of the node at `path` (or of its key when atKey), or the deepest existing node. */
  positionOf(path: readonly PathSeg[], atKey = false): { line: number; col: number } {
    const found = this.locate(path);
    return this.position(atKey && found.key ? found.key : found.node);
  }

  /** issue records a problem at `path` (at the key node when atKey). */
  issue(path: readonly PathSeg[], message: string, atKey = false): void {
    const { line, col } = this.positionOf(path, atKey);
    this.issues.push({ file: this.file, line, col, path: formatPath(path), message });
  }

  /** warn records a warning at `path`. */
  warn(path: readonly PathSeg[], message: string): void {
    const { line, col } = this.positionOf(path, true);
    this.warnings.push({ file: this.file, line, col, path: formatPath(path), message });
  }

  /** addZodIssues maps zod issues to positioned SpecIssues (unknown keys point at each key, with did-you-mean). */
  addZodIssues(issues: readonly z.core.$ZodIssue[]): void {
    for (const iss of issues) {
      const path = iss.path.filter((p): p is PathSeg => typeof p !== 'symbol');
      if (iss.code === 'unrecognized_keys') {
        const known = iss.message.startsWith(UNKNOWN_KEYS_MARK)
          ? iss.message.slice(UNKNOWN_KEYS_MARK.length).split('\u0001')
          : [];
        for (const k of iss.keys) this.issue([...path, k], unknownKeyMessage(k, known), true);
      } else if (iss.code === 'invalid_key') {
        this.issue(path, iss.issues[0]?.message ?? iss.message, true);
      } else if (iss.code === 'invalid_union' && iss.errors.length > 0 && iss.message === 'Invalid input') {
        this.issue(path, 'value does not match any allowed form');
      } else {
        this.issue(path, iss.message);
      }
    }
  }

  /** throwIfIssues throws a SpecError with every issue, sorted by position, when there are any. */
  throwIfIssues(): void {
    if (this.issues.length === 0) return;
    const seen = new Set<string>();
    const unique = this.issues.filter((i) => {
      const k = `${i.line}:${i.col}:${i.path}:${i.message}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
    unique.sort((a, b) => a.line - b.line || a.col - b.col);
    throw new SpecError(unique);
  }
}

function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `a string ('${v.length > 40 ? `${v.slice(0, 40)}…` : v}')`;
  if (typeof v === 'number') return `a number (${v})`;
  if (typeof v === 'boolean') return `a boolean (${v})`;
  return typeof v;
}

const EXPECTED: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  record: 'a mapping',
};

/** zodErrorMap phrases zod's generic issues the way an operator reads them. */
export function zodErrorMap(iss: z.core.$ZodRawIssue): string | undefined {
  if (iss.input === undefined && (iss.code === 'invalid_type' || iss.code === 'invalid_union')) {
    const last = iss.path?.[iss.path.length - 1];
    return typeof last === 'string' ? `missing required key '${last}'` : 'missing value';
  }
  switch (iss.code) {
    case 'invalid_type': {
      if (typeof iss.input === 'number' && !Number.isFinite(iss.input)) return `must be a finite number (got ${iss.input})`;
      const expected = EXPECTED[iss.expected] ?? iss.expected;
      const got = describeValue(iss.input);
      const hint = iss.expected === 'string' && (typeof iss.input === 'number' || typeof iss.input === 'boolean') ? '; quote it' : '';
      return `expected ${expected}, got ${got}${hint}`;
    }
    case 'too_big': {
      const n = String(iss.maximum);
      if (iss.origin === 'array') return `at most ${n} items allowed`;
      if (iss.origin === 'string') return `at most ${n} characters allowed`;
      return `must be ${iss.inclusive === false ? 'less than' : 'at most'} ${n} (got ${String(iss.input)})`;
    }
    case 'too_small': {
      const n = String(iss.minimum);
      if (iss.origin === 'array') return Number(n) <= 1 ? 'must not be empty' : `at least ${n} items needed`;
      if (iss.origin === 'string') return Number(n) <= 1 ? 'must not be empty' : `at least ${n} characters needed`;
      return `must be ${iss.inclusive === false ? 'greater than' : 'at least'} ${n} (got ${String(iss.input)})`;
    }
    case 'invalid_value':
      return `must be ${iss.values.length === 1 ? String(iss.values[0]) : `one of ${iss.values.map(String).join(', ')}`} (got ${typeof iss.input === 'string' ? `'${iss.input}'` : describeValue(iss.input)})`;
    default:
      return undefined;
  }
}

/** checkResourceKeys flags custom resource names that are malformed or look like typos of built-in ones. */
export function checkResourceKeys(src: SpecSource, path: PathSeg[], raw: unknown, builtin: readonly string[]): void {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return;
  for (const key of Object.keys(raw)) {
    if (builtin.includes(key)) continue;
    const s = suggestKey(key, builtin);
    if (s && levenshtein(key.toLowerCase(), s) <= 2) {
      src.issue([...path, key], `unknown resource '${key}' (did you mean '${s}'?)`, true);
    } else if (!SCALAR_NAME_RE.test(key)) {
      src.issue([...path, key], `invalid custom resource name '${key}' (use [a-z][a-z0-9_-]*)`, true);
    }
  }
}

const SECTIONS = [
  ['processes', 'process', 'process'],
  ['containers', 'container', 'docker'],
  ['vms', 'vm', 'libvirt'],
] as const;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const listOf = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** checkPlanRaw runs the cross-field and cross-group checks zod cannot express, on the raw document. */
function checkPlanRaw(src: SpecSource): void {
  const data = src.data as Obj;
  const names: { name: string; path: PathSeg[]; line: number; col: number }[] = [];
  for (const [section] of SECTIONS) {
    listOf(data[section]).forEach((g, i) => {
      if (!isObj(g)) return;
      const path: PathSeg[] = [section, i];
      checkResourceKeys(src, [...path, 'resources'], g.resources, GROUP_RESOURCE_KEYS);
      if (typeof g.name === 'string') names.push({ name: g.name, path, ...src.positionOf(path) });
      if (section === 'vms') {
        const hasTotal = 'total' in g;
        const hasShapes = 'shapes' in g;
        if (hasTotal && 'count' in g) src.issue([...path, 'count'], 'use either count + resources or total + shapes, not both', true);
        if (hasTotal && 'resources' in g) src.issue([...path, 'resources'], 'use either count + resources or total + shapes, not both', true);
        if (hasTotal && !hasShapes) src.issue([...path, 'total'], 'total needs shapes: the VM sizes to split it into', true);
        if (hasShapes && !hasTotal) src.issue([...path, 'shapes'], 'shapes need total: the amount to split into these shapes', true);
        if (!hasTotal && !hasShapes) {
          const r = g.resources;
          if (!isObj(r) || r.cpus === undefined || r.mem === undefined) {
            src.issue([...path, ...(isObj(r) ? ['resources'] : [])], 'vms need resources with cpus and mem (with count), or total + shapes');
          }
        }
      }
    });
  }
  names.sort((a, b) => a.line - b.line || a.col - b.col);
  const first = new Map<string, { line: number; col: number }>();
  for (const n of names) {
    const f = first.get(n.name);
    if (f) src.issue([...n.path, 'name'], `duplicate group name '${n.name}' (first defined at ${f.line}:${f.col})`);
    else first.set(n.name, n);
  }
  const jobNames = new Map<string, { line: number; col: number }>();
  listOf(data.jobs).forEach((j, i) => {
    if (!isObj(j)) return;
    checkResourceKeys(src, ['jobs', i, 'resources'], j.resources, GROUP_RESOURCE_KEYS);
    if (typeof j.name !== 'string') return;
    const f = jobNames.get(j.name);
    if (f) src.issue(['jobs', i, 'name'], `duplicate job name '${j.name}' (first defined at ${f.line}:${f.col})`);
    else jobNames.set(j.name, src.positionOf(['jobs', i]));
  });
}

type RawGroup = NonNullable<RawPlan['processes']>[number] &
  Partial<NonNullable<RawPlan['vms']>[number]> & { image?: string };

function taskResources(r: RawGroup['resources'], kind: GroupKind): TaskResources {
  const { cpus, mem, disk, gpus, ports, ...rest } = r ?? {};
  const scalars: Record<string, number> = {};
  for (const [k, v] of Object.entries(rest)) if (typeof v === 'number') scalars[k] = v;
  const isVm = kind === 'vm';
  return {
    cpus: (cpus as number | undefined) ?? (isVm ? 0 : DEFAULT_PROCESS_CPUS),
    mem: (mem as number | undefined) ?? (isVm ? 0 : DEFAULT_PROCESS_MEM),
    disk: (disk as number | undefined) ?? 0,
    gpus: (gpus as number | undefined) ?? 0,
    scalars,
    ports: (ports as number[] | undefined) ?? [],
  };
}

function buildGroup(src: SpecSource, section: string, index: number, g: RawGroup, kind: GroupKind, driver: Driver): GroupSpec {
  const { line, col } = src.positionOf([section, index]);
  const out: GroupSpec = {
    name: g.name,
    kind,
    driver,
    count: g.count,
    everyAgent: g.everyAgent,
    resources: taskResources(g.resources, kind),
    constraints: g.constraints,
    strategy: g.strategy,
    env: g.env,
    stopGraceMs: g.stopGrace ?? DEFAULT_STOP_GRACE_MS,
    restart: g.restart,
    line,
    col,
  };
  if (g.maxPerAgent !== undefined) out.maxPerAgent = g.maxPerAgent;
  if (g.command !== undefined) out.command = g.command;
  if (g.workingDir !== undefined) out.workingDir = g.workingDir;
  if (g.image !== undefined) out.image = g.image;
  if (g.health) {
    const h = g.health;
    out.health = { intervalMs: h.interval ?? DEFAULT_HEALTH_INTERVAL_MS };
    if (h.http !== undefined) out.health.http = h.http;
    if (h.tcp !== undefined) out.health.tcp = h.tcp;
    if (h.command !== undefined) out.health.command = h.command;
    if (h.port !== undefined) out.health.port = h.port;
  }
  if (g.total) {
    // A resource plan: the scheduler splits `total` into `shapes`; count and resources are not used.
    out.count = 0;
    out.total = { cpus: g.total.cpus };
    out.shapes = (g.shapes ?? []).map((s) => ({ cpus: s.cpus, mem: s.mem, disk: s.disk ?? 0, gpus: s.gpus ?? 0 }));
  }
  if (g.subnet !== undefined) out.subnet = g.subnet;
  if (g.volumes !== undefined) out.volumes = g.volumes;
  return out;
}

const planNamePositions = new WeakMap<PlanSpec, { line: number; col: number }>();

/**
 * loadPlanText validates plan YAML text and returns the PlanSpec. `file` names the source in messages.
 * Throws SpecError carrying every issue of the file.
 */
export function loadPlanText(text: string, file: string): PlanSpec {
  const src = SpecSource.parse(text, file, 'plan');
  const top = src.data as Record<string, unknown> | null;
  if (top && typeof top === 'object' && !Array.isArray(top) && 'idcs' in top && !('name' in top)) {
    // an inventory among the plans (`plan diff examples/` reads examples/inventory.example.yaml)
    src.issue([], 'this file is an inventory (it has idcs:), not a plan: pass it with --inventory, and keep it out of the plan folders');
    src.throwIfIssues();
  }
  const result = planSchema.safeParse(src.data, { error: zodErrorMap });
  if (!result.success) src.addZodIssues(result.error.issues);
  checkPlanRaw(src);
  src.throwIfIssues();
  const raw = result.data as RawPlan;
  const groups: GroupSpec[] = [];
  for (const [section, kind, driver] of SECTIONS) {
    (raw[section] ?? []).forEach((g, i) => groups.push(buildGroup(src, section, i, g as RawGroup, kind, driver)));
  }
  groups.sort((a, b) => a.line - b.line || a.col - b.col);
  if (raw.jobs && raw.jobs.length > 0) src.warn(['jobs'], JOBS_WARNING);
  const plan: PlanSpec = { file, name: raw.name, project: raw.project, groups, warnings: src.warnings };
  if (raw.placement) {
    plan.placement = {};
    if (raw.placement.idcs) plan.placement.idcs = raw.placement.idcs;
    if (raw.placement.cluster) plan.placement.cluster = raw.placement.cluster;
  }
  planNamePositions.set(plan, src.positionOf(['name']));
  return plan;
}

/** loadPlanFile reads and validates one plan file. */
export async function loadPlanFile(path: string): Promise<PlanSpec> {
  return loadPlanText(await readSpecFile(path, 'plan'), path);
}

/**
 * loadPlans loads several plans (files or folders), reporting the issues of every file at once, and
 * rejects two plans with the same name.
 */
export async function loadPlans(paths: string[]): Promise<PlanSpec[]> {
  const files = await expandPlanPaths(paths);
  const plans: PlanSpec[] = [];
  const issues: SpecIssue[] = [];
  for (const f of files) {
    try {
      plans.push(await loadPlanFile(f));
    } catch (e) {
      if (e instanceof SpecError) issues.push(...e.issues);
      else throw e;
    }
  }
  const byName = new Map<string, PlanSpec>();
  for (const p of plans) {
    const other = byName.get(p.name);
    if (other) {
      const pos = planNamePositions.get(p) ?? { line: 1, col: 1 };
      issues.push({ file: p.file, ...pos, path: 'name', message: `duplicate plan name '${p.name}' (also in ${other.file})` });
    } else byName.set(p.name, p);
  }
  if (issues.length > 0) throw new SpecError(issues);
  return plans;
}
