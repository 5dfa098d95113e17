/**
 * json-text.ts's escaping of valid UTF-8 as a WebAssembly kernel with 128-bit SIMD: sixteen bytes
 * are looked at in a few instructions, and copied as they are unless one needs an escape. On the
 * recording thread this is most of the CPU a recording costs (bench/json-escape-cost.ts measures
 * it against the JS writer), and that thread competes with the sessions for the cores.
 *
 * The module is written here instruction by instruction (wasm-emitter.ts), compiled once per
 * thread, synchronously (it is small). Its memory holds the escape table, the input and the output:
 * a chunk is copied in, escaped, and copied out into the caller's buffer, one native copy each way.
 */
import { i32, oneFunctionModule, op, v128 } from './wasm-emitter.js';

/** Escape of each byte that needs one, at TABLE + byte * 8 (eight bytes: one i64 store writes it). */
const TABLE = 0;
/** How many bytes longer than the byte its escape is, at EXTRA + byte. */
const EXTRA = TABLE + 256 * 8;
/** The input: a chunk, or a piece of a longer one. */
const INPUT = EXTRA + 256;
/**
 * Pieces of at most this many bytes: reads come in up to 64 KiB, and a longer chunk is escaped a
 * piece at a time rather than growing the memory (which never shrinks) for it.
 */
const PIECE = 64 * 1024;
/**
 * The output: every byte a six-byte escape at most, and room for 16-byte stores past its end. The
 * kernel loads 16 bytes at a time past the input's end too (into the output: harmless, unused).
 */
const OUTPUT = INPUT + PIECE;
const PAGES = Math.ceil((OUTPUT + PIECE * 6 + 32) / 65536);

// the kernel's parameters and locals, by index
const [src, n, dst, end, mask, lane, byte, step, v, space, quote, backslash] = [
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
];

/**
 * escape(src, n, dst): the `n` bytes at `src` as JSON string text at `dst`; returns where it ends.
 * Each round loads the 16 bytes at `src`, stores them all at `dst`, and makes a mask of the lanes
 * that need an escape (only those that hold input, in the last round). Then, first to last, each
 * such lane's byte is overwritten with its escape, and the lanes after it are stored again, loaded
 * from the input, as many bytes further on as the escape is longer. No lane is looked at one by one
 * unless it needs an escape, and none needs a branch of its own.
 */
export const KERNEL = oneFunctionModule({
  name: 'escape',
  params: [i32, i32, i32],
  results: [i32],
  locals: [i32, i32, i32, i32, i32, v128, v128, v128, v128],
  memory: 'memory',
  pages: PAGES,
  body: [
    // the bytes that need an escape, in every lane: below 0x20, '"' and '\'
    ...[op('i32.const', 0x20), op('i8x16.splat'), op('local.set', space)],
    ...[op('i32.const', 0x22), op('i8x16.splat'), op('local.set', quote)],
    ...[op('i32.const', 0x5c), op('i8x16.splat'), op('local.set', backslash)],
    ...[op('local.get', src), op('local.get', n), op('i32.add'), op('local.set', end)],
    op('block'), // done
    op('loop'), // a round of 16 lanes
    ...[op('local.get', src), op('local.get', end), op('i32.ge_u'), op('br_if', 1)],
    ...[op('local.get', dst), op('local.get', src), op('v128.load'), op('local.tee', v), op('v128.store')],
    ...[op('local.get', v), op('local.get', space), op('i8x16.lt_u')],
    ...[op('local.get', v), op('local.get', quote), op('i8x16.eq'), op('v128.or')],
    ...[op('local.get', v), op('local.get', backslash), op('i8x16.eq'), op('v128.or')],
    ...[op('i8x16.bitmask'), op('local.set', mask)],
    // the lanes that hold input: 16, or what is left in the last round
    ...[op('local.get', end), op('local.get', src), op('i32.sub'), op('local.tee', step)],
    ...[op('i32.const', 16), op('i32.lt_u')],
    op('if'),
    ...[op('local.get', mask), op('i32.const', 1), op('local.get', step), op('i32.shl')],
    ...[op('i32.const', 1), op('i32.sub'), op('i32.and'), op('local.set', mask)],
    op('else'),
    ...[op('i32.const', 16), op('local.set', step)],
    op('end'),
    op('block'), // the lanes are done
    op('loop'), // the next lane that needs an escape
    ...[op('local.get', mask), op('i32.eqz'), op('br_if', 1)],
    ...[op('local.get', mask), op('i32.ctz'), op('local.set', lane)],
    // its escape, where its byte was
    ...[op('local.get', dst), op('local.get', lane), op('i32.add')],
    ...[op('local.get', src), op('local.get', lane), op('i32.add'), op('i32.load8_u'), op('local.tee', byte)],
    ...[op('i32.const', 3), op('i32.shl'), op('i64.load', TABLE), op('i64.store')],
    ...[
      op('local.get', dst),
      op('local.get', byte),
      op('i32.load8_u', EXTRA),
      op('i32.add'),
      op('local.set', dst),
    ],
    // the lanes after it, again, that much further on
    ...[op('local.get', dst), op('local.get', lane), op('i32.add')],
    ...[op('local.get', src), op('local.get', lane), op('i32.add'), op('v128.load', 1), op('v128.store', 1)],
    // the lowest bit of the mask cleared
    ...[op('local.get', mask), op('local.get', mask), op('i32.const', 1), op('i32.sub'), op('i32.and')],
    op('local.set', mask),
    op('br', 0),
    op('end'),
    op('end'),
    ...[op('local.get', src), op('local.get', step), op('i32.add'), op('local.set', src)],
    ...[op('local.get', dst), op('local.get', step), op('i32.add'), op('local.set', dst)],
    op('br', 0),
    op('end'),
    op('end'),
    op('local.get', dst),
  ],
});

/** The WebAssembly JS API as used here (TypeScript declares it only in its DOM and worker libs). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}

/** Writes `bytes` (valid UTF-8) as JSON string text into `out` at `at`; returns where it ends. */
export type ValidWriter = (bytes: Buffer, out: Buffer, at: number) => number;

/**
 * The kernel on this thread, with the escapes of json-text.ts (`escapes[byte * 8]`, `lengths[byte]`,
 * 0 for none) in its table; undefined where WebAssembly does not run (`--jitless`, or a runtime
 * without SIMD), and the caller writes with JS.
 */
export function simdWriter(escapes: Uint8Array, lengths: Uint8Array): ValidWriter | undefined {
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (wasm === undefined) return undefined;
  let exports: Record<string, unknown>;
  try {
    ({ exports } = new wasm.Instance(new wasm.Module(KERNEL)));
  } catch {
    return undefined; // a CompileError: no SIMD here
  }
  const kernel = exports.escape as (src: number, n: number, dst: number) => number;
  const memory = new Uint8Array((exports.memory as { buffer: ArrayBuffer }).buffer);
  for (let b = 0; b < 256; b++) {
    const length = lengths[b]!;
    if (length === 0) continue;
    memory.set(escapes.subarray(b * 8, b * 8 + length), TABLE + b * 8);
    memory[EXTRA + b] = length - 1;
  }
  // Buffer#fill from a view longer than the range copies the range's length from the view's start:
  // one native copy, with no view made per chunk (Buffer#copy from an offset makes one on Node 20)
  const output = memory.subarray(OUTPUT);
  return (bytes, out, at) => {
    for (let from = 0; from < bytes.length; from += PIECE) {
      // (a view only for a chunk longer than a piece)
      memory.set(bytes.length <= PIECE ? bytes : bytes.subarray(from, from + PIECE), INPUT);
      const length = kernel(INPUT, Math.min(PIECE, bytes.length - from), OUTPUT) - OUTPUT;
      out.fill(output, at, at + length);
      at += length;
    }
    return at;
  };
}
