/**
 * Tables aligned like kubectl's (Go tabwriter with minwidth 10, padding 3): upper-case headers, every column but the
 * last padded to its widest cell plus three spaces, at least ten characters wide.
 */
export function renderTable(headers: string[], rows: string[][]): string {
  const all = [headers.map((h) => h.toUpperCase()), ...rows];
  const widths = headers.map((_, column) =>
    Math.max(10, ...all.map((row) => visibleLength(row[column] ?? '') + 3)),
  );
  return all
    .map((row) =>
      row
        .map((cell, column) => (column === row.length - 1 ? cell : cell + ' '.repeat(widths[column]! - visibleLength(cell))))
        .join('')
        .trimEnd(),
    )
    .join('\n') + '\n';
}

/** Length as shown on a terminal: ANSI colour sequences take no room. */
function visibleLength(text: string): number {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001b\[[0-9;]*m/g, '').length;
}
