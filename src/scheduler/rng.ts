/**
 * A seeded pseudo-random generator (mulberry32). The scheduler uses it only to break ties, so the
 * same seed always gives the same plan.
 */

/** Rng is a deterministic source of numbers in [0, 1). */
export interface Rng {
  /** next returns the next number in [0, 1). */
  next(): number;
  /** pick returns an integer in [0, n). */
  pick(n: number): number;
}

/** createRng returns a mulberry32 generator seeded with `seed` (any finite number; fractions are truncated). */
export function createRng(seed: number): Rng {
  let state = (Number.isFinite(seed) ? Math.trunc(seed) : 0) >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, pick: (n) => Math.min(n - 1, Math.floor(next() * n)) };
}
