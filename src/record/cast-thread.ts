/**
 * The recording thread: it turns the sessions' output into asciicast lines and writes them, so
 * that the JSON escaping (the bulk of recording's cost) does not take the sessions' own thread.
 * Messages come in order from CastWriter (cast-writer.ts); every batch of events is answered with
 * `done` once its lines are written (or wait, less than a write's worth, for more), which is what
 * frees its place in the writer's bound. The files' queues here are bounded as well.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { CastRecording } from './cast.js';
import type { FromThread, ThreadOptions, ToThread } from './cast-messages.js';
import { QueueBudget } from './file-sink.js';

const port = parentPort!;
const opts = workerData as ThreadOptions;
const budget = new QueueBudget(opts.maxQueued);
const casts = new Map<number, CastRecording>();
/**
 * Lines are written a quarter MiB at a time (or after a moment): few writes, each one large, made
 * on this thread (it waits for the disk, the sessions do not), so that what waits for the disk is
 * what the sessions' side counts against its bound.
 */
const MIN_WRITE = 256 * 1024;
const post = (m: FromThread) => port.postMessage(m);

port.on('message', (m: ToThread) => {
  switch (m.t) {
    case 'open':
      CastRecording.open(
        m.path,
        {
          budget,
          maxQueued: opts.maxQueuedPerSession,
          minWrite: MIN_WRITE,
          blocking: true,
          onFailure: (why) => post({ t: 'failed', id: m.id, why }),
        },
        { timestamp: 0, title: '', kubeshim: {} },
        m.maxBytes,
      ).then(
        (cast) => {
          casts.set(m.id, cast);
          post({ t: 'opened', id: m.id });
        },
        (err: NodeJS.ErrnoException) => post({ t: 'opened', id: m.id, error: err.code ?? err.message }),
      );
      return;
    case 'header': {
      const cast = casts.get(m.id);
      if (cast) cast.header = m.header;
      return;
    }
    case 'events': {
      const data = Buffer.from(m.data);
      const touched = new Set<CastRecording>();
      for (let i = 0, at = 0; i < m.ids.length; i++) {
        const cast = casts.get(m.ids[i]!);
        const end = at + m.lengths[i]!;
        if (cast) {
          cast.add(m.kinds[i]!, data.subarray(at, end), m.times[i]!);
          touched.add(cast);
        }
        at = end;
      }
      for (const cast of touched) cast.flush();
      port.postMessage({ t: 'done', data: m.data } satisfies FromThread, [m.data]);
      return;
    }
    case 'end':
    case 'discard': {
      const cast = casts.get(m.id);
      casts.delete(m.id);
      const closed = m.t === 'end' ? cast?.end(m.summary, m.ms) : cast?.discard();
      void (closed ?? Promise.resolve()).then(() => post({ t: 'closed', id: m.id }));
      return;
    }
  }
});
