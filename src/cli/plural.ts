// Counts in the commands' summaries: `1 warning`, `2 warnings`.

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
