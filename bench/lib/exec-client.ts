/**
 * What an exec load generator does, whatever protocol it speaks: the calls a worker serves
 * (bench/workers/ws-exec-client.ts, spdy-exec-client.ts). Every session is checked — the status
 * must be Success and the byte counts exact — so a broken path fails the run instead of measuring
 * fast failures.
 */
import { decodeStatus } from '../../src/k8s/status.js';
import { percentiles } from './stats.js';
import { CHUNK, type Program } from './wire.js';
import { serveWorker } from './worker.js';

export interface ExecSession {
  /** Write stdin; a promise when the writer should wait before writing more. */
  writeStdin(chunk: Buffer): Promise<void> | undefined;
  /** End stdin (v5 CLOSE, SPDY FIN). */
  closeStdin(): void;
  /** Stop and restart reading stdout (backpressure reaches the sender). */
  pauseStdout(): void;
  resumeStdout(): void;
  /** The status text, once the session ended cleanly; rejects when it did not. */
  ended: Promise<string>;
}

/** Open a session running `program` at `base` (an http:// URL); stdout chunks go to `onStdout`. */
export type OpenExec = (
  base: string,
  program: Program,
  onStdout: (chunk: Buffer) => void,
) => Promise<ExecSession>;

/** kubectl pings every 5 s on either protocol (docs/protocols.md §7). */
export const CLIENT_PING_MS = 5000;

const stdinChunk = Buffer.alloc(CHUNK, 0x61);

function expectSuccess(status: string): void {
  const outcome = decodeStatus(status);
  if (outcome.kind !== 'success') throw new Error(`session ended with ${status || 'no status'}`);
}

async function inParallel(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(count, concurrency) }, async () => {
    while (next < count) await task(next++);
  });
  await Promise.all(lanes);
}

export function serveExecClient(open: OpenExec): void {
  const held: ExecSession[] = [];
  serveWorker(
    {},
    {
      /** `sessions` sessions at once, each reading `bytes` of stdout. */
      stdout: async (p) => {
        const { url, sessions, bytes } = p as { url: string; sessions: number; bytes: number };
        const started = performance.now();
        await inParallel(sessions, sessions, async () => {
          let got = 0;
          const s = await open(url, { kind: 'source', bytes }, (chunk) => {
            got += chunk.length;
          });
          expectSuccess(await s.ended);
          if (got !== bytes) throw new Error(`stdout: ${got} bytes of ${bytes}`);
        });
        return { ms: performance.now() - started, bytes: sessions * bytes };
      },

      /** `sessions` sessions at once, each writing `bytes` of stdin, then closing it; the pod counts. */
      stdin: async (p) => {
        const { url, sessions, bytes } = p as { url: string; sessions: number; bytes: number };
        const started = performance.now();
        await inParallel(sessions, sessions, async () => {
          let out = '';
          const s = await open(url, { kind: 'sink' }, (chunk) => {
            out += chunk.toString();
          });
          for (let left = bytes; left > 0; ) {
            const piece = left >= CHUNK ? stdinChunk : stdinChunk.subarray(0, left);
            left -= piece.length;
            const wait = s.writeStdin(piece);
            if (wait) await wait;
          }
          s.closeStdin();
          expectSuccess(await s.ended);
          if (Number(out.trim()) !== bytes)
            throw new Error(`the pod counted ${out.trim()} bytes of ${bytes}`);
        });
        return { ms: performance.now() - started, bytes: sessions * bytes };
      },

      /** One session, `count` 1-byte stdin → stdout round trips one after the other; microseconds. */
      echo: async (p) => {
        const { url, count } = p as { url: string; count: number };
        let echoed: () => void = () => {};
        const s = await open(url, { kind: 'echo' }, () => echoed());
        const key = Buffer.from('k');
        const rtts: number[] = [];
        for (let i = 0; i < count; i++) {
          const arrived = new Promise<void>((r) => {
            echoed = r;
          });
          const t0 = performance.now();
          void s.writeStdin(key);
          await arrived;
          rtts.push((performance.now() - t0) * 1000);
        }
        s.closeStdin();
        expectSuccess(await s.ended);
        return percentiles(rtts);
      },

      /** One session reading `bytes` of stdout at no more than `rate` bytes per second. */
      slow: async (p) => {
        const { url, bytes, rate } = p as { url: string; bytes: number; rate: number };
        const started = performance.now();
        let got = 0;
        let paused = false;
        let session: ExecSession | undefined;
        const s = await open(url, { kind: 'source', bytes }, (chunk) => {
          got += chunk.length;
          const ahead = started + (got / rate) * 1000 - performance.now();
          if (ahead > 1 && !paused && session) {
            paused = true;
            session.pauseStdout();
            setTimeout(() => {
              paused = false;
              session?.resumeStdout();
            }, ahead);
          }
        });
        session = s;
        expectSuccess(await s.ended);
        if (got !== bytes) throw new Error(`stdout: ${got} bytes of ${bytes}`);
        return { ms: performance.now() - started, bytes };
      },

      /** Open `sessions` idle `cat` sessions, each proven set up by one echoed byte, and keep them. */
      hold: async (p) => {
        const { url, sessions } = p as { url: string; sessions: number };
        const started = performance.now();
        await inParallel(sessions, 64, async () => {
          let echoed: () => void = () => {};
          const arrived = new Promise<void>((r) => {
            echoed = r;
          });
          const s = await open(url, { kind: 'echo' }, () => echoed());
          void s.writeStdin(Buffer.from('k'));
          await arrived;
          held.push(s);
        });
        return { ms: performance.now() - started, sessions: held.length };
      },

      /** End every held session (stdin EOF → the pod's `cat` exits) and wait for their statuses. */
      release: async () => {
        const sessions = held.splice(0);
        for (const s of sessions) s.closeStdin();
        const statuses = await Promise.all(sessions.map((s) => s.ended));
        for (const st of statuses) expectSuccess(st);
        return { sessions: sessions.length };
      },
    },
  );
}
