/**
 * The dashboard's search: a query is whitespace-separated words, case-insensitive, and a row matches
 * when its search text holds every word. One rule for the agents, tasks, jobs and deployments views.
 */

/** queryWords are the query's words, lower-cased (none for a blank query). */
export function queryWords(query: string): string[] {
  return query.toLowerCase().split(/\s+/).filter(Boolean);
}

/** matchingEveryWord returns the items whose searchOf text holds every word of the query (the list itself when there is none). */
export function matchingEveryWord<T>(list: T[], query: string, searchOf: (item: T) => string): T[];
export function matchingEveryWord<T>(list: readonly T[], query: string, searchOf: (item: T) => string): readonly T[];
export function matchingEveryWord<T>(list: readonly T[], query: string, searchOf: (item: T) => string): readonly T[] {
  const words = queryWords(query);
  if (words.length === 0) return list;
  return list.filter((item) => {
    const s = searchOf(item);
    return words.every((w) => s.includes(w));
  });
}
