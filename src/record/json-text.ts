/**
 * Output bytes as the JSON string of an asciicast event, written straight from the bytes into a
 * buffer: valid UTF-8 is kept as it is and only `"`, `\` and control characters are escaped, so a
 * recorded chunk is read once and written once (decoding it to a string, JSON.stringify and
 * encoding back cost several times that, and recording must not slow the session it records much).
 * Bytes that are not valid UTF-8 (binary output) take the slow way, with U+FFFD for what is not
 * text, as a terminal would show it. A character split across two chunks is put back together.
 */
import { isUtf8 } from 'node:buffer';

const HEX = '0123456789abcdef';
/** Escape of each byte that needs one (JSON, RFC 8259 §7), else undefined. */
const ESCAPES: (Buffer | undefined)[] = Array.from({ length: 256 }, (_, b) => {
  const short: Record<number, string> = {
    8: '\\b',
    9: '\\t',
    10: '\\n',
    12: '\\f',
    13: '\\r',
    34: '\\"',
    92: '\\\\',
  };
  if (short[b] !== undefined) return Buffer.from(short[b]!, 'latin1');
  if (b < 0x20) return Buffer.from(`\\u00${HEX[b >> 4]}${HEX[b & 15]}`, 'latin1');
  return undefined;
});

const NEEDS_ESCAPE = Uint8Array.from(ESCAPES, (e) => (e === undefined ? 0 : 1));

/** The most bytes `bytes` can take once written by JsonText: every byte a six-byte escape. */
export function maxJsonLength(bytes: number): number {
  return bytes * 6 + 8;
}

/** One output stream's text: carries a character cut at a chunk's end over to the next chunk. */
export class JsonText {
  private carry: Buffer | undefined;

  /**
   * Write `chunk`'s text (no quotes) into `out` at `at`, which has room for
   * maxJsonLength(chunk.length) + 3 more bytes; returns where it ends.
   */
  write(chunk: Buffer, out: Buffer, at: number): number {
    let body = chunk;
    if (this.carry !== undefined) {
      // the rest of the cut character: up to three continuation bytes
      let k = 0;
      while (k < 3 && k < body.length && (body[k]! & 0xc0) === 0x80) k++;
      const joined = Buffer.concat([this.carry, body.subarray(0, k)]);
      const short = sequenceLength(joined[0]!) > joined.length;
      // still short, and the chunk held nothing else: the rest may come with the next one
      if (short && k === body.length) {
        this.carry = joined;
        return at;
      }
      this.carry = undefined;
      body = body.subarray(k);
      at = writeText(joined, out, at, short);
    }
    const cut = incompleteTail(body);
    if (cut > 0) {
      this.carry = Buffer.from(body.subarray(body.length - cut));
      body = body.subarray(0, body.length - cut);
    }
    return writeText(body, out, at, false);
  }
}

/** Write `bytes` escaped; `cut`: a character cut short for good (shown as U+FFFD). */
function writeText(bytes: Buffer, out: Buffer, at: number, cut: boolean): number {
  if (cut || !isUtf8(bytes)) {
    const json = JSON.stringify(bytes.toString('utf8'));
    return at + out.write(json.slice(1, -1), at, 'utf8');
  }
  // one pass, byte by byte: cheaper than a copy call per run between the escapes of text
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (NEEDS_ESCAPE[b] === 0) {
      out[at++] = b;
      continue;
    }
    const esc = ESCAPES[b]!;
    for (let k = 0; k < esc.length; k++) out[at++] = esc[k]!;
  }
  return at;
}

/** How many bytes at the end of `b` begin a UTF-8 character that continues in the next chunk. */
function incompleteTail(b: Buffer): number {
  for (let back = 1; back <= 3 && back <= b.length; back++) {
    const byte = b[b.length - back]!;
    if ((byte & 0xc0) === 0x80) continue; // a continuation byte: look further back
    const need = sequenceLength(byte);
    return need > back ? back : 0;
  }
  return 0;
}

/** Length of the UTF-8 sequence a lead byte starts (1 for ASCII and for bytes that start none). */
function sequenceLength(lead: number): number {
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  if (lead >= 0xe0) return lead <= 0xef ? 3 : 1;
  if (lead >= 0xc2) return 2;
  return 1;
}
