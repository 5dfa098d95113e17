/**
 * A container's long-running main process, the one `kubectl attach` reaches. The main process is
 * `cat`: whatever an attached client types comes back to every attached client, and to the pod log
 * (a container's stdout is its log). It is restarted if it dies (restartPolicy Always).
 *
 * End of an attach session: the CRI keeps an attach open until the container exits, so a piped
 * `kubectl attach -i` would never end. Here an attach ends with Success once the client closed its
 * stdin and the echo of what it wrote has reached it (at most 2 s later) — or when the client
 * leaves, or the main process exits. Without stdin it lasts until the client leaves.
 */
import type { Readable, Writable } from 'node:stream';
import { Broadcast, type Subscription } from './broadcast.js';
import type { PodLog } from './pod-log.js';
import type { PodProcess } from './process.js';

export const MAIN_COMMAND: readonly string[] = ['cat'];

const ECHO_WAIT_MS = 2000;
const RESTART_DELAY_MS = 200;

export interface AttachIO {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
}

export class Container {
  restartCount = 0;
  startedAt = new Date();
  private main!: PodProcess;
  private stdoutCast!: Broadcast;
  private stderrCast!: Broadcast;
  private readonly detachers = new Set<() => void>();
  private stopped = false;

  constructor(
    readonly name: string,
    private readonly spawnMain: () => PodProcess,
    private readonly log: PodLog,
  ) {
    this.start();
  }

  private start(): void {
    const main = this.spawnMain();
    this.main = main;
    this.startedAt = new Date();
    const tap = (chunk: Buffer) => this.log.write(chunk);
    this.stdoutCast = new Broadcast(main.stdout, tap);
    this.stderrCast = new Broadcast(main.stderr!, tap);
    const restart = () => {
      for (const detach of [...this.detachers]) detach();
      if (this.stopped) return;
      this.restartCount++;
      setTimeout(() => {
        if (!this.stopped) this.start();
      }, RESTART_DELAY_MS).unref();
    };
    main.exited.then(restart, restart);
  }

  /** Attach to the main process; resolves when the session should end (see the module comment). */
  attach(io: AttachIO, signal: AbortSignal): Promise<void> {
    const main = this.main;
    return new Promise((resolve) => {
      const subs: Subscription[] = [];
      const out = io.stdout ? this.stdoutCast.subscribe(io.stdout) : undefined;
      if (out) subs.push(out);
      if (io.stderr) subs.push(this.stderrCast.subscribe(io.stderr));
      let timer: NodeJS.Timeout | undefined;
      let written = 0;
      const onData = (chunk: Buffer) => {
        written += chunk.length;
        if (!main.stdin.write(chunk)) {
          io.stdin!.pause();
          main.stdin.once('drain', () => io.stdin!.resume());
        }
      };
      const finish = () => {
        if (!this.detachers.delete(finish)) return;
        if (timer) clearTimeout(timer);
        signal.removeEventListener('abort', finish);
        io.stdin?.off('data', onData);
        for (const sub of subs) sub.cancel();
        resolve();
      };
      this.detachers.add(finish);
      if (this.stopped || signal.aborted) return finish();
      signal.addEventListener('abort', finish, { once: true });
      if (!io.stdin) return;
      io.stdin.on('data', onData);
      io.stdin.once('end', () => {
        const echoed = () => out === undefined || out.bytes >= written;
        if (echoed()) return finish();
        out!.onChunk = () => {
          if (echoed()) finish();
        };
        timer = setTimeout(finish, ECHO_WAIT_MS);
      });
    });
  }

  stop(): void {
    this.stopped = true;
    this.main.kill();
    for (const detach of [...this.detachers]) detach();
  }
}
