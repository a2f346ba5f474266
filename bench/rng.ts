/**
 * The seeded generator the benchmark inputs and the scheduler's seeded tests draw from, written once
 * so a generated workload stays the same for a seed wherever it is made.
 */

/** mulberry32 is a small seeded generator of floats in [0, 1), independent of the scheduler's own Rng. */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
