/** What CastWriter (the sessions' thread) and the recording thread say to each other. */
import type { CastEventKind, CastHeader } from './cast.js';

export interface ThreadOptions {
  /** Bytes of lines queued for the disk, per file and in all. */
  maxQueuedPerSession: number;
  maxQueued: number;
}

export type ToThread =
  | { t: 'open'; id: number; path: string; maxBytes: number }
  /** Before the first events or the end: the session's metadata is complete by then. */
  | { t: 'header'; id: number; header: CastHeader }
  /** Events of any recordings, their bytes one after another in `data`. */
  | {
      t: 'events';
      data: ArrayBuffer;
      ids: number[];
      kinds: CastEventKind[];
      times: number[];
      lengths: number[];
    }
  | { t: 'end'; id: number; summary: string; ms: number }
  | { t: 'discard'; id: number };

export type FromThread =
  | { t: 'opened'; id: number; error?: string }
  /** One `events` message is written: its buffer comes back, to be used again. */
  | { t: 'done'; data: ArrayBuffer }
  | { t: 'failed'; id: number; why: string }
  | { t: 'closed'; id: number };
