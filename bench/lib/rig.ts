/**
 * The processes a run shares: the upstream(s), TCP relays in front of each, shims per forced
 * upstream protocol, and the load generators — each in a process of its own, started on first use
 * and kept for the scenarios after (starting a worker costs about a second). Relays and shims come
 * in numbered slots: round r of every scenario goes through slot r, so that the rounds of a
 * scenario sample different processes (a shim process can settle into a slower or faster state for
 * its whole life; the medians should not hang on one process). Scenarios that measure a process's
 * memory take fresh ones (`fresh`) and stop them themselves.
 */
import type { Worker } from './worker.js';
import { startWorker } from './worker.js';

export type UpstreamKind = 'lean' | 'emulator';
export type ShimMode = 'spdy' | 'websocket';
export type ClientName = 'ws-exec-client' | 'spdy-exec-client' | 'portforward-client';

export class Rig {
  private readonly workers = new Map<string, Promise<Worker>>();

  upstream(kind: UpstreamKind): Promise<Worker> {
    return this.once(`upstream:${kind}`, () => startWorker(kind === 'lean' ? 'upstream' : 'emulator'));
  }

  /** TCP relay number `slot` in front of the `kind` upstream. */
  relay(kind: UpstreamKind, slot: number): Promise<Worker> {
    return this.once(`relay:${kind}:${slot}`, async () =>
      this.fresh('tcp-relay', { target: (await this.upstream(kind)).info['url'] }),
    );
  }

  /**
   * Shim number `slot` in front of the `kind` upstream, translating every session to `mode`;
   * `record`: recording every session.
   */
  shim(mode: ShimMode, kind: UpstreamKind, slot: number, record = false): Promise<Worker> {
    return this.once(`shim:${mode}:${kind}:${slot}${record ? ':record' : ''}`, async () =>
      this.freshShim(mode, kind, record),
    );
  }

  /** A shim process of its own (the caller stops it); `warm: false` skips its start-up warm-up. */
  async freshShim(mode: ShimMode, kind: UpstreamKind, record = false, warm = true): Promise<Worker> {
    return startWorker('shim', { upstream: (await this.upstream(kind)).info['url'], mode, record, warm });
  }

  /** `kubeshim serve --workers N` (the command line) number `slot` in front of the `kind` upstream. */
  serve(mode: ShimMode, kind: UpstreamKind, workers: number, slot: number): Promise<Worker> {
    return this.once(`serve:${mode}:${kind}:${workers}:${slot}`, async () =>
      // a primary and its workers each load the TypeScript sources: slow on a busy machine
      startWorker(
        'serve-cli',
        { upstream: (await this.upstream(kind)).info['url'], mode, workers },
        { readyTimeoutMs: 300_000 },
      ),
    );
  }

  client(name: ClientName): Promise<Worker> {
    return this.once(`client:${name}`, () => startWorker(name));
  }

  /** Any worker in a process of its own (the caller stops it). */
  fresh(name: string, params: Record<string, unknown> = {}): Promise<Worker> {
    return startWorker(name, params);
  }

  async close(): Promise<void> {
    const all = await Promise.allSettled(this.workers.values());
    this.workers.clear();
    await Promise.all(all.map((r) => (r.status === 'fulfilled' ? r.value.stop() : undefined)));
  }

  private once(key: string, start: () => Promise<Worker>): Promise<Worker> {
    let w = this.workers.get(key);
    if (w === undefined) {
      w = start();
      this.workers.set(key, w);
    }
    return w;
  }
}
