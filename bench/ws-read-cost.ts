/**
 * What reading channel frames costs in the shim's own process, without sockets: the same bytes
 * (32 KiB channel messages cut into 64 KiB reads; masked as a client sends them, unmasked as a
 * server does) through ws's parser then the channel decoder, as translators read before, and
 * through the strict ChannelFrameReader that reads them now. Reports CPU seconds per GiB for each,
 * alternated in rounds. `npx tsx bench/ws-read-cost.ts [GiB]`.
 */

import { decodeMessage } from '../src/channel/codec.js';
import { ChannelFrameReader } from '../src/channel/frame-reader.js';
import { createFrameReader } from '../src/channel/ws-internals.js';

const MESSAGE = 32 * 1024;
const READ = 64 * 1024;

/** `count` binary frames of `[0] + MESSAGE bytes`, joined, then cut into READ-byte reads. */
function reads(count: number, masked: boolean): Buffer[] {
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const len = MESSAGE + 1;
    const head = Buffer.from([0x82, (masked ? 0x80 : 0) | 126, len >> 8, len & 0xff]);
    frames.push(head, masked ? Buffer.from([1, 2, 3, 4]) : Buffer.alloc(0), Buffer.alloc(len, i & 0xff));
  }
  const all = Buffer.concat(frames);
  const out: Buffer[] = [];
  for (let at = 0; at < all.length; at += READ) out.push(Buffer.from(all.subarray(at, at + READ)));
  return out;
}

function cpuSeconds(run: () => void): number {
  const before = process.cpuUsage();
  run();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1e6;
}

const gib = Number(process.argv[2] ?? 2);
let sink = 0;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

for (const masked of [true, false]) {
  const chunks = reads(256, masked); // 8 MiB, fed again and again (unmasking in place just toggles it)
  const bytes = chunks.reduce((n, c) => n + c.length, 0);
  const passes = Math.ceil((gib * 1024 ** 3) / bytes);
  const viaWs = () => {
    const receiver = createFrameReader(masked, 32 * 1024 * 1024, {
      onMessage: (fragments) => {
        const data = fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments);
        const msg = decodeMessage(data, true, false);
        if (msg) sink += msg.payload.length;
      },
      onError: (err) => {
        throw err;
      },
    });
    for (let p = 0; p < passes; p++) for (const c of chunks) receiver.write(c);
  };
  const sliced = () => {
    const reader = new ChannelFrameReader(
      (piece) => {
        sink += piece.data.length;
      },
      (why) => {
        throw new Error(why);
      },
      { masked, onControl: () => {} },
    );
    for (let p = 0; p < passes; p++) for (const c of chunks) reader.write(c);
  };
  const ws: number[] = [];
  const ours: number[] = [];
  for (let round = 0; round < 5; round++) {
    ws.push(cpuSeconds(viaWs) / gib);
    ours.push(cpuSeconds(sliced) / gib);
  }
  const show = (xs: number[]) =>
    `${median(xs).toFixed(3)} CPU-s/GiB (${xs.map((x) => x.toFixed(3)).join(' ')})`;
  console.log(`${masked ? 'masked (from a client)  ' : 'unmasked (from a server)'}`);
  console.log(`  ws + decode  ${show(ws)}`);
  console.log(`  sliced       ${show(ours)}`);
  console.log(`  sliced / ws  ${(median(ours) / median(ws)).toFixed(2)}×`);
}
if (sink === 0) throw new Error('nothing was read');
