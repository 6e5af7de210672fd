// Field-level decoding of a 512-byte tar header block, shared by format detection and the reader.

export const BLOCK = 512;

export function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

/**
 * A numeric header field: octal text (optionally space- or NUL-padded), or GNU base-256 when the
 * top bit of the first byte is set. Undefined when malformed, negative or not a safe integer, so
 * that a corrupt size can never turn into NaN arithmetic further on.
 */
export function parseNumeric(block: Uint8Array, offset: number, length: number): number | undefined {
  const field = block.subarray(offset, offset + length);
  const first = field[0] ?? 0;
  if (first & 0x80) {
    if (first !== 0x80) return undefined; // 0xff marks a negative number
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return Number.isSafeInteger(n) ? n : undefined;
  }
  let i = 0;
  while (i < field.length && (field[i] === 0x20 || field[i] === 0)) i++;
  let n = 0;
  let digits = 0;
  for (; i < field.length; i++) {
    const c = field[i]!;
    if (c < 0x30 || c > 0x37) break;
    n = n * 8 + (c - 0x30);
    digits++;
  }
  for (; i < field.length; i++) if (field[i] !== 0x20 && field[i] !== 0) return undefined;
  if (digits === 0) return 0;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Historic tars summed the header as signed bytes, so both sums are accepted. */
export function checksumMatches(block: Uint8Array): boolean {
  const stored = parseNumeric(block, 148, 8);
  if (stored === undefined) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

export function hasUstarMagic(block: Uint8Array): boolean {
  return block[257] === 0x75 && block[258] === 0x73 && block[259] === 0x74 && block[260] === 0x61 && block[261] === 0x72;
}

/** POSIX ustar ("ustar\0") keeps a name prefix at 345; GNU ("ustar ") uses those bytes for other fields. */
export function isPosixUstar(block: Uint8Array): boolean {
  return hasUstarMagic(block) && block[262] === 0;
}
