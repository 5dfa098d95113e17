/**
 * The resize stream/channel as the CRI server reads it (docs/protocols.md §3.5): a streaming JSON
 * decoder over the concatenated bytes, objects `{"Width":…,"Height":…}` with keys matched
 * case-insensitively and values that must fit uint16. The first value that fails to decode stops
 * resize handling for the rest of the session; the stream is still drained.
 */
import type { Readable } from 'node:stream';

export type OnResize = (cols: number, rows: number) => void;

/** Longest object text accepted; a resize message is ~30 bytes. */
const MAX_PENDING = 4096;

export function readResizeStream(source: Readable, onResize: OnResize): void {
  let pending = '';
  let failed = false;
  source.on('data', (chunk: Buffer) => {
    if (failed) return;
    pending += chunk.toString('utf8');
    const result = drainObjects(pending, onResize);
    if (result === undefined || result.length > MAX_PENDING) {
      failed = true;
      pending = '';
      return;
    }
    pending = result;
  });
  source.on('error', () => {});
}

/** Decode every complete object at the front of `text`; the rest, or undefined on a decode error. */
function drainObjects(text: string, onResize: OnResize): string | undefined {
  let start = 0;
  for (;;) {
    while (start < text.length && /\s/.test(text[start]!)) start++;
    if (start === text.length) return '';
    if (text[start] !== '{') return undefined;
    const end = objectEnd(text, start);
    if (end < 0) return text.slice(start);
    const size = parseSize(text.slice(start, end + 1));
    if (size === undefined) return undefined;
    onResize(size.cols, size.rows);
    start = end + 1;
  }
}

/** Index of the brace closing the object opened at `start`, or -1 if it has not arrived yet. */
function objectEnd(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

function parseSize(json: string): { cols: number; rows: number } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  let cols = 0;
  let rows = 0;
  for (const [key, v] of Object.entries(value)) {
    const k = key.toLowerCase();
    if (k !== 'width' && k !== 'height') continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff) return undefined;
    if (k === 'width') cols = v;
    else rows = v;
  }
  return { cols, rows };
}
