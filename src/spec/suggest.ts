/**
 * Did-you-mean: the edit distance between two words and the closest known key to a mistyped one.
 * No imports, so the CLI's unknown-command hook (src/hooks/command-not-found.ts) shares it cheaply.
 */

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
