/**
 * JIT warm-up at start (issue 15): a fresh process runs its first sessions' codecs in V8's
 * interpreter, and compiles them while keystrokes wait. Running the hot codecs over synthetic
 * frames here, before the listener takes connections, gets them optimised first: SPDY frame write
 * and parse with header blocks, channel messages encoded and decoded, and WebSocket frames written,
 * masked and not, into a sink. Bounded in time (WARM_UP_MS); nothing is left behind but compiled code.
 */
import { Duplex } from 'node:stream';
import { decodeMessage, encodeBase64, encodeBinary } from '../channel/codec.js';
import { writeBinaryFrame } from '../channel/ws-frame.js';
import { FLAG_FIN } from '../spdy/constants.js';
import { type FrameHandler, FrameParser } from '../spdy/frame-parser.js';
import { dataFrameHeader, pingFrame, synReplyFrame, synStreamFrame } from '../spdy/frame-writer.js';
import { HeaderCompressor, HeaderDecompressor } from '../spdy/header-block.js';

/** Rounds of every codec: past V8's threshold for optimising the functions a keystroke runs. */
const ROUNDS = 3000;
const SESSION_EVERY = 1000;
/** Never longer than this, on a slow or busy machine. */
const WARM_UP_MS = 50;

const HEADERS = { streamtype: 'stdout', 'x-kubernetes-pty': 'true', ':status': '200' };
const LIMITS = { maxControlFrameSize: 16 * 1024 * 1024 };
const noop = () => {};

/** Run the codecs until they are optimised, or WARM_UP_MS has passed; returns the rounds run. */
export function warmUp(): number {
  const deadline = performance.now() + WARM_UP_MS;
  let received = 0;
  const handler: FrameHandler = {
    onData: (_id, payload) => {
      received += payload.length;
    },
    onSynStream: noop,
    onSynReply: noop,
    onRstStream: noop,
    onPing: noop,
    onGoAway: noop,
    onIgnoredFrame: noop,
    onError: noop,
  };
  const sink = new Duplex({ read: noop, write: (_chunk, _encoding, done) => done() });
  const keystroke = Buffer.from('l');
  const echo = Buffer.from('ls -la\r\n');
  let parser = session(handler);
  let round = 0;
  for (; round < ROUNDS && (round % 16 !== 0 || performance.now() < deadline); round++) {
    if (round > 0 && round % SESSION_EVERY === 0) parser = session(handler);
    const payload = round & 1 ? keystroke : echo;
    parser.write(
      dataFrameHeader(1, round % SESSION_EVERY === SESSION_EVERY - 1 ? FLAG_FIN : 0, payload.length),
    );
    parser.write(payload);
    const message = decodeMessage(encodeBinary(round % 3, payload), true, false);
    const text = decodeMessage(Buffer.from(encodeBase64(1, payload), 'latin1'), false, true);
    writeBinaryFrame(sink, (round & 1) === 1, message?.channel ?? 0, text?.payload ?? payload);
  }
  sink.destroy();
  return received > 0 ? round : 0;
}

/** A session's header blocks, both ways (each session starts zlib streams on both sides). */
function session(handler: FrameHandler): FrameParser {
  const compressor = new HeaderCompressor();
  const parser = new FrameParser(handler, new HeaderDecompressor(64 * 1024, 256), LIMITS);
  parser.write(synStreamFrame(1, 0, 0, compressor.compress(HEADERS)));
  parser.write(synReplyFrame(1, 0, compressor.compress(HEADERS)));
  parser.write(pingFrame(1));
  return parser;
}
