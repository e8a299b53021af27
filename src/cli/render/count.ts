/** Counts in plain English: `count(1, 'version')` is "1 version", `count(2, 'version')` "2 versions". */
export function count(n: number, word: string, pluralWord = `${word}s`): string {
  return `${n} ${n === 1 ? word : pluralWord}`;
}
