/**
 * Units: memory/disk sizes (`512Mi`, `2G`) and durations (`10s`, `1h30m`), parsed to numbers.
 */
import { FactoryError } from '../errors.js';

/**
 * SpecValueError is a bad value found outside any file context (a size, duration or constraint given
 * to parseMem / parseDuration / parseConstraint directly). The loaders turn it into a SpecIssue with the
 * position of the offending YAML node.
 */
export class SpecValueError extends FactoryError {
  /** detail is the message without the `where: ` prefix, for use inside a SpecIssue. */
  readonly detail: string;

  constructor(detail: string, where?: string) {
    super(where ? `${where}: ${detail}` : detail, { code: 'E_SPEC_VALUE', exitCode: 1 });
    this.detail = detail;
  }
}

/** MAX_SAFE_BYTES is the largest size accepted (2^53): above it bytes are no longer exact integers. */
export const MAX_SAFE_BYTES = 2 ** 53;

const UNIT_FACTORS: Record<string, number> = {
  '': 1,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
};

/** MEM_PATTERN is the JSON Schema pattern of a size string such as `512Mi`, `1.5Gi`, `2G` or `1000`. */
export const MEM_PATTERN = '^[0-9]+(\\.[0-9]+)?\\s?(Ki|Mi|Gi|Ti|Pi|k|K|M|G|T|P)?$';

/** DURATION_PATTERN is the JSON Schema pattern of a duration string such as `10s`, `500ms` or `1h30m`. */
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ms|s|m|h|d))+$|^[0-9]+(\\.[0-9]+)?$';

const SIZE_RE = /^([+-]?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s?([A-Za-z]*)$/;

/** ParseSizeOptions tunes parseSize: whether zero is acceptable (declared capacities, custom scalars). */
export interface ParseSizeOptions {
  allowZero?: boolean;
}

/**
 * parseSize parses a size (`256Mi`, `2G`, `1000`, or a number of bytes) into a whole number of bytes
 * (fractions round up). Binary units Ki..Pi, decimal K..P (and `k`). Throws SpecValueError on NaN,
 * negatives, zero (unless allowZero), unknown units and values above 2^53.
 */
export function parseSize(v: string | number, where?: string, opts: ParseSizeOptions = {}): number {
  let n: number;
  let unit = '';
  if (typeof v === 'number') {
    n = v;
  } else if (typeof v === 'string') {
    const s = v.trim();
    const m = SIZE_RE.exec(s);
    if (!m) throw new SpecValueError(`invalid size '${v}' (expected a number with an optional unit, e.g. 512Mi or 2Gi)`, where);
    n = Number(m[1]);
    unit = m[2] ?? '';
    if (!(unit in UNIT_FACTORS)) {
      throw new SpecValueError(`unknown unit '${unit}' in '${v}' (use Ki, Mi, Gi, Ti or K, M, G, T)`, where);
    }
  } else {
    throw new SpecValueError(`invalid size ${JSON.stringify(v)} (expected e.g. 512Mi or a number of bytes)`, where);
  }
  if (!Number.isFinite(n)) throw new SpecValueError(`invalid size '${String(v)}' (not a finite number)`, where);
  if (n < 0) throw new SpecValueError(`size must not be negative (got '${String(v)}')`, where);
  const bytes = Math.ceil(n * (UNIT_FACTORS[unit] ?? 1));
  if (bytes === 0 && !opts.allowZero) throw new SpecValueError(`size must be greater than zero (got '${String(v)}')`, where);
  if (bytes > MAX_SAFE_BYTES) throw new SpecValueError(`size '${String(v)}' is too large (limit 2^53 bytes, about 8Pi)`, where);
  return bytes;
}

/**
 * parseMem parses a memory or disk amount (`256Mi`, `512M`, `2Gi`, `1Ti`, `1.5Gi`, `1000`, `"1000"`)
 * into bytes. Zero is rejected: a resource ask of zero bytes is a mistake.
 */
export function parseMem(v: string | number, where?: string): number {
  return parseSize(v, where);
}

const DURATION_FACTORS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION_PART_RE = /([0-9]*\.?[0-9]+)(ms|s|m|h|d)/y;

/** MAX_DURATION_MS caps durations at 365 days: anything longer is a typo. */
export const MAX_DURATION_MS = 365 * 86_400_000;

/**
 * parseDuration parses `10s`, `500ms`, `2m`, `1h`, `1h30m`, `1d` or a plain number of seconds into
 * milliseconds. Zero is allowed; negatives, unknown units and more than 365 days are not.
 */
export function parseDuration(v: string | number, where?: string): number {
  let ms: number;
  if (typeof v === 'number') {
    ms = v * 1000;
  } else if (typeof v === 'string') {
    const s = v.trim();
    if (/^[0-9]*\.?[0-9]+$/.test(s)) {
      ms = Number(s) * 1000;
    } else {
      ms = 0;
      DURATION_PART_RE.lastIndex = 0;
      let pos = 0;
      while (pos < s.length) {
        DURATION_PART_RE.lastIndex = pos;
        const m = DURATION_PART_RE.exec(s);
        if (!m) {
          throw new SpecValueError(`invalid duration '${v}' (use e.g. 500ms, 10s, 2m, 1h or 1h30m; a plain number is seconds)`, where);
        }
        ms += Number(m[1]) * (DURATION_FACTORS[m[2] ?? ''] ?? NaN);
        pos = DURATION_PART_RE.lastIndex;
      }
      if (s.length === 0) throw new SpecValueError(`invalid duration '' (use e.g. 10s)`, where);
    }
  } else {
    throw new SpecValueError(`invalid duration ${JSON.stringify(v)} (use e.g. 10s)`, where);
  }
  if (!Number.isFinite(ms)) throw new SpecValueError(`invalid duration '${String(v)}'`, where);
  if (ms < 0) throw new SpecValueError(`duration must not be negative (got '${String(v)}')`, where);
  if (ms > MAX_DURATION_MS) throw new SpecValueError(`duration '${String(v)}' is too long (limit 365d)`, where);
  return Math.round(ms);
}

/** formatDuration renders milliseconds as a plan would say them: 800ms, 8s, 1m30s, 5m, 2h, 1h30m (whole seconds above 1 s). */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const total = Math.round(ms / 1000);
  const [h, m, s] = [Math.floor(total / 3600), Math.floor((total % 3600) / 60), total % 60];
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}`;
}
