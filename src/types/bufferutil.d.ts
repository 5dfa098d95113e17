declare module 'bufferutil' {
  /** Write `source` XOR-masked with the 4-byte `mask` into `output` at `offset`. */
  export function mask(source: Buffer, mask: Buffer, output: Buffer, offset: number, length: number): void;
  export function unmask(buffer: Buffer, mask: Buffer): void;
}
