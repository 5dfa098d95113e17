/**
 * Just enough of the WebAssembly binary format (Core Specification, chapter 5 "Binary Format") to
 * write a module of one exported function and one exported memory by hand, so that a kernel is
 * TypeScript a reader can follow instruction by instruction, with no compiler and no binary blob.
 * Instructions are named as in the text format; `op` encodes one with its immediates.
 */

/** Value types (spec §5.3.1 number types, §5.3.2 vector types). */
export const i32 = 0x7f;
export const i64 = 0x7e;
export const v128 = 0x7b;

/**
 * The opcodes used, each with the kind of immediates it takes (spec §5.4). A SIMD opcode is the
 * prefix 0xFD followed by its number as a LEB128 u32 (spec §5.4.8, "Vector Instructions").
 */
const OPCODES = {
  block: { code: [0x02], imm: 'blocktype' },
  loop: { code: [0x03], imm: 'blocktype' },
  if: { code: [0x04], imm: 'blocktype' },
  else: { code: [0x05], imm: 'none' },
  end: { code: [0x0b], imm: 'none' },
  br: { code: [0x0c], imm: 'u32' },
  br_if: { code: [0x0d], imm: 'u32' },
  'local.get': { code: [0x20], imm: 'u32' },
  'local.set': { code: [0x21], imm: 'u32' },
  'local.tee': { code: [0x22], imm: 'u32' },
  'i64.load': { code: [0x29], imm: 'memarg' },
  'i32.load8_u': { code: [0x2d], imm: 'memarg' },
  'i64.store': { code: [0x37], imm: 'memarg' },
  'i32.const': { code: [0x41], imm: 's32' },
  'i32.eqz': { code: [0x45], imm: 'none' },
  'i32.lt_u': { code: [0x49], imm: 'none' },
  'i32.ge_u': { code: [0x4f], imm: 'none' },
  'i32.ctz': { code: [0x68], imm: 'none' },
  'i32.add': { code: [0x6a], imm: 'none' },
  'i32.sub': { code: [0x6b], imm: 'none' },
  'i32.and': { code: [0x71], imm: 'none' },
  'i32.shl': { code: [0x74], imm: 'none' },
  'v128.load': { code: [0xfd, 0], imm: 'memarg' },
  'v128.store': { code: [0xfd, 11], imm: 'memarg' },
  'i8x16.splat': { code: [0xfd, 15], imm: 'none' },
  'i8x16.eq': { code: [0xfd, 35], imm: 'none' },
  'i8x16.lt_u': { code: [0xfd, 38], imm: 'none' },
  'v128.or': { code: [0xfd, 80], imm: 'none' },
  'i8x16.bitmask': { code: [0xfd, 100], imm: 'none' },
} as const;

export type Opcode = keyof typeof OPCODES;

/**
 * One instruction's bytes. Immediates: a label depth or local index (u32); a constant (s32); a
 * memarg as [offset] (alignment hint 0: the accesses are unaligned); block, loop and if take none
 * here (their type is empty: nothing in, nothing out).
 */
export function op(name: Opcode, ...args: number[]): number[] {
  const { code, imm } = OPCODES[name];
  const bytes = code.length === 1 ? [code[0]] : [code[0], ...u32(code[1])];
  switch (imm) {
    case 'blocktype':
      return [...bytes, 0x40];
    case 'u32':
      return [...bytes, ...u32(args[0]!)];
    case 's32':
      return [...bytes, ...s32(args[0]!)];
    case 'memarg':
      return [...bytes, ...u32(0), ...u32(args[0] ?? 0)];
    case 'none':
      return bytes;
  }
}

/** Unsigned LEB128 (spec §5.2.2). */
export function u32(n: number): number[] {
  const out: number[] = [];
  do {
    const low = n & 0x7f;
    n >>>= 7;
    out.push(n === 0 ? low : low | 0x80);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 (spec §5.2.2): stops once the rest is all sign bits and the last byte shows the sign. */
export function s32(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const low = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (low & 0x40) === 0) || (n === -1 && (low & 0x40) !== 0)) {
      out.push(low);
      return out;
    }
    out.push(low | 0x80);
  }
}

/** A vector: its length, then its items (spec §5.1.3). */
function vec(items: number[][]): number[] {
  return [...u32(items.length), ...items.flat()];
}

/** A section: its id, its size, its contents (spec §5.5.2). */
function section(id: number, contents: number[]): number[] {
  return [id, ...u32(contents.length), ...contents];
}

/** A name as UTF-8 bytes with their length (spec §5.2.4). */
function name(text: string): number[] {
  return [...u32(text.length), ...Buffer.from(text, 'utf8')];
}

export interface OneFunction {
  /** The function's export name, its parameter and result types, and its locals past the params. */
  name: string;
  params: number[];
  results: number[];
  locals: number[];
  body: number[][];
  /** The memory's export name and its initial size in 64 KiB pages (no maximum). */
  memory: string;
  pages: number;
}

/** A module of one function and one memory, both exported (spec §5.5: sections in their order). */
export function oneFunctionModule(f: OneFunction): Uint8Array<ArrayBuffer> {
  const type = [0x60, ...vec(f.params.map((t) => [t])), ...vec(f.results.map((t) => [t]))];
  const locals = vec(f.locals.map((t) => [...u32(1), t]));
  const code = [...locals, ...f.body.flat(), ...op('end')];
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d], // magic: "\0asm"
    ...[0x01, 0x00, 0x00, 0x00], // version 1
    ...section(1, vec([type])), // types: the function's type is type 0
    ...section(3, vec([u32(0)])), // functions: function 0 has type 0
    ...section(5, vec([[0x00, ...u32(f.pages)]])), // memories: a minimum, no maximum
    ...section(
      7, // exports: function 0 (kind 0x00) and memory 0 (kind 0x02)
      vec([
        [...name(f.name), 0x00, ...u32(0)],
        [...name(f.memory), 0x02, ...u32(0)],
      ]),
    ),
    ...section(10, vec([[...u32(code.length), ...code]])), // code: the function's size, locals, body
  ]);
}
