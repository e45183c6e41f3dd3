// Row sets of one page as hex bitmaps: compact in workflow state (500 rows → 125 characters) and
// free of Node's Buffer, so the campaign workflow can use them.

export function bitmapFrom(rows: Iterable<number>, base = ''): string {
  const bytes = bytesOf(base);
  for (const r of rows) {
    const i = r >> 3;
    while (bytes.length <= i) bytes.push(0);
    bytes[i] = (bytes[i] ?? 0) | (1 << (r & 7));
  }
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join('');
}

export function bitmapHas(bitmap: string, row: number): boolean {
  const byte = parseInt(bitmap.slice((row >> 3) * 2, (row >> 3) * 2 + 2) || '0', 16);
  return (byte & (1 << (row & 7))) !== 0;
}

export function bitmapCount(bitmap: string): number {
  let n = 0;
  for (const b of bytesOf(bitmap)) for (let v = b; v; v &= v - 1) n += 1;
  return n;
}

function bytesOf(hex: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < hex.length; i += 2) out.push(parseInt(hex.slice(i, i + 2), 16));
  return out;
}
