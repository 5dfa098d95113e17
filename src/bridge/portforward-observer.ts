/**
 * Per-connection port-forward figures for a relayed session (opt-in: `--port-forward-stats`). A
 * relayed port-forward is one SPDY session end to end (docs/protocols.md §4.1, §4.3); the relay itself
 * never looks inside. This observer reads a copy of what the relay forwards — never changing,
 * holding or delaying a byte — with a SPDY tap (src/spdy/tap.ts), which reads both directions:
 * - a `data` stream is one forwarded connection: its port, request id and payload bytes each way;
 * - bytes on its `error` stream (server to client only, §9) are the connection's error;
 * - PINGs from the client and the echoes coming back (§6.5): the keepalive answered end to end.
 * When the relay carries WebSocket frames (the tunnel passed through as it is), ws's own frame
 * parser takes the payloads out first. Anything it cannot read makes it stop watching (the
 * session line says why); the relay goes on untouched. A bug of its own ends the session as an
 * internal error.
 *
 * Figures land in the session line as they change (`ports`, `connections`, `forwards` per port,
 * `spdyPings`), and every finished connection gets a `port-forward connection` line.
 */
import type { Writable } from 'node:stream';
import { createFrameReader } from '../channel/ws-internals.js';
import type { Logger } from '../observe/logger.js';
import type { HeaderMap } from '../spdy/header-block.js';
import { SpdyTap, type TapDirection, type TapDirectionName, type TapListener } from '../spdy/tap.js';
import type { RelayHooks } from './relay.js';
import type { SessionRecord } from './session-record.js';

/** What the relay carries: SPDY bytes, or the WebSocket frames of a tunnel (§4.3). */
export type RelayFraming = 'spdy' | 'websocket';

/** Figures of one pod port, summed over its connections. */
export interface PortFigures {
  connections: number;
  /** Payload bytes toward the pod. */
  bytesIn: number;
  /** Payload bytes from the pod. */
  bytesOut: number;
  /** Connections whose error stream carried a message. */
  errors: number;
}

interface ErrorStream {
  port: number;
  /** What the server wrote on it (the first KiB), once it wrote anything. */
  text: string | undefined;
}

interface Connection {
  port: number;
  requestId: string;
  figures: PortFigures;
  error: ErrorStream | undefined;
  bytesIn: number;
  bytesOut: number;
  started: number;
  clientDone: boolean;
  podDone: boolean;
}

/** Connections followed at once; beyond that they are counted but not followed (bounded memory). */
const MAX_TRACKED = 4096;
/** Error text kept per connection for its line. */
const MAX_ERROR_TEXT = 1024;
/**
 * Ports given figures of their own in the session line; a client naming more (one connection can
 * open thousands of streams, each with any port) has the rest summed under `otherPorts`.
 */
const MAX_PORTS = 64;
/**
 * `port-forward connection` lines per session; past it one line says the rest go unlogged (their
 * figures still count), so that one client cannot flood the log.
 */
const MAX_CONNECTION_LINES = 1000;
/** Largest tunnel message read (x/net's frame limit, §5.2). */
const MAX_TUNNEL_MESSAGE = 32 * 1024 * 1024;

export class PortForwardObserver {
  /** Data streams by stream id. */
  private readonly connections = new Map<number, Connection>();
  /** Error streams by stream id, while the server may still write on them. */
  private readonly errorStreams = new Map<number, ErrorStream>();
  /** Error streams by request, until their data stream opens (kubectl opens the error stream first). */
  private readonly unpaired = new Map<string, ErrorStream>();
  private readonly perPort: Record<string, PortFigures> = {};
  private readonly pings = { client: 0, answered: 0 };
  private readonly tap: SpdyTap;
  private readonly fromClient: (chunk: Buffer) => void;
  private readonly fromUpstream: (chunk: Buffer) => void;
  private opened = 0;
  private stopped = false;
  private otherPorts: PortFigures | undefined;
  private connectionLines = 0;

  constructor(
    private readonly record: SessionRecord,
    private readonly log: Logger,
    framing: RelayFraming,
  ) {
    this.tap = new SpdyTap({
      client: this.clientListener(),
      upstream: this.upstreamListener(),
      onUnreadable: (direction, err) => this.stop(`${direction} SPDY: ${err.message}`),
      onInternalError: (direction, err) => this.internalError(direction, err),
    });
    const { client, upstream } = this.tap;
    if (framing === 'spdy') {
      this.fromClient = (chunk) => client.watch(chunk);
      this.fromUpstream = (chunk) => upstream.watch(chunk);
    } else {
      // a client's frames are masked and ws unmasks in place: it gets a copy, never the relayed bytes
      const masked = this.tunnelReader(client, true);
      const plain = this.tunnelReader(upstream, false);
      this.fromClient = (chunk) => masked.write(Buffer.from(chunk));
      this.fromUpstream = (chunk) => plain.write(chunk);
    }
    record.note('portForwardStats', 'observed');
    record.note('connections', 0);
    record.note('forwards', this.perPort);
    record.note('spdyPings', this.pings);
  }

  /** The hooks to give the relay. */
  get hooks(): RelayHooks {
    return {
      onClientData: (chunk) => {
        if (!this.stopped) this.fromClient(chunk);
      },
      onUpstreamData: (chunk) => {
        if (!this.stopped) this.fromUpstream(chunk);
        return undefined; // forwarded as it is
      },
      onUpstreamEnd: () => this.stop(undefined),
    };
  }

  /** Binary message payloads of one direction of a tunnel, into that direction of the tap. */
  private tunnelReader(direction: TapDirection, masked: boolean): Writable {
    return createFrameReader(masked, MAX_TUNNEL_MESSAGE, {
      onMessage: (fragments, isBinary) => {
        if (!isBinary) {
          this.stop('a text message in the tunnel');
          return;
        }
        for (const f of fragments) direction.watch(f);
      },
      onError: (err) => this.stop(`tunnel frames: ${err.message}`),
    });
  }

  private clientListener(): TapListener {
    return {
      onSynStream: (id, headers) => this.onStreamOpened(id, headers),
      onData: (id, payload, fin) => {
        const c = this.connections.get(id);
        if (c === undefined) return;
        c.bytesIn += payload.length;
        c.figures.bytesIn += payload.length;
        if (fin) {
          c.clientDone = true;
          this.finishIfDone(id, c);
        }
      },
      onRstStream: (id) => this.onReset(id),
      onPing: () => {
        this.pings.client++;
      },
    };
  }

  private upstreamListener(): TapListener {
    return {
      onData: (id, payload, fin) => {
        const c = this.connections.get(id);
        if (c !== undefined) {
          c.bytesOut += payload.length;
          c.figures.bytesOut += payload.length;
          if (fin) {
            c.podDone = true;
            this.finishIfDone(id, c);
          }
          return;
        }
        this.onErrorData(id, payload, fin);
      },
      onRstStream: (id) => this.onReset(id),
      // client PING ids are odd (§6.5): an odd one coming back is an echo
      onPing: (id) => {
        if (id & 1) this.pings.answered++;
      },
    };
  }

  /** A stream the client opened (§4.1): `data` is a connection, `error` its error channel. */
  private onStreamOpened(id: number, headers: HeaderMap): void {
    const port = Number(headers['port']);
    const type = headers['streamtype'];
    if ((type !== 'data' && type !== 'error') || !Number.isInteger(port)) return;
    const request = requestKey(id, headers);
    if (type === 'error') {
      if (this.errorStreams.size >= MAX_TRACKED || this.unpaired.size >= MAX_TRACKED) return;
      const error: ErrorStream = { port, text: undefined };
      this.errorStreams.set(id, error);
      this.unpaired.set(request, error);
      return;
    }
    const figures = this.portFigures(port);
    figures.connections++;
    this.record.note('connections', ++this.opened);
    const error = this.unpaired.get(request);
    this.unpaired.delete(request);
    if (this.connections.size >= MAX_TRACKED) return;
    this.connections.set(id, {
      port,
      requestId: headers['requestid'] ?? '',
      figures,
      error,
      bytesIn: 0,
      bytesOut: 0,
      started: performance.now(),
      clientDone: false,
      podDone: false,
    });
  }

  private portFigures(port: number): PortFigures {
    let figures = this.perPort[port];
    if (figures === undefined) {
      figures = { connections: 0, bytesIn: 0, bytesOut: 0, errors: 0 };
      if (Object.keys(this.perPort).length >= MAX_PORTS) {
        if (this.otherPorts === undefined) {
          this.otherPorts = figures;
          this.record.note('otherPorts', figures);
        }
        return this.otherPorts;
      }
      this.perPort[port] = figures;
      this.record.note('ports', Object.keys(this.perPort).map(Number));
    }
    return figures;
  }

  private onErrorData(id: number, payload: Buffer, fin: boolean): void {
    const error = this.errorStreams.get(id);
    if (error === undefined) return;
    if (payload.length > 0) {
      if (error.text === undefined) this.portFigures(error.port).errors++;
      const text = error.text ?? '';
      if (text.length < MAX_ERROR_TEXT)
        error.text = (text + payload.toString('utf8')).slice(0, MAX_ERROR_TEXT);
    }
    if (fin) this.errorStreams.delete(id);
  }

  private onReset(id: number): void {
    this.errorStreams.delete(id);
    const c = this.connections.get(id);
    if (c !== undefined) this.finish(id, c, 'reset');
  }

  private finishIfDone(id: number, c: Connection): void {
    if (c.clientDone && c.podDone) this.finish(id, c, 'closed');
  }

  private finish(id: number, c: Connection, how: string): void {
    this.connections.delete(id);
    if (++this.connectionLines > MAX_CONNECTION_LINES) {
      if (this.connectionLines === MAX_CONNECTION_LINES + 1)
        this.log.warn(
          { lines: MAX_CONNECTION_LINES },
          'port-forward connections: no more lines for this session (the session line still counts them)',
        );
      return;
    }
    const error = c.error?.text;
    this.log.info(
      {
        port: c.port,
        requestId: c.requestId,
        bytesIn: c.bytesIn,
        bytesOut: c.bytesOut,
        durationMs: Math.round(performance.now() - c.started),
        end: how,
        ...(error === undefined ? {} : { error }),
      },
      'port-forward connection',
    );
  }

  /** The session is over (`why` undefined) or unreadable: stop watching, account for what is open. */
  private stop(why: string | undefined): void {
    if (this.stopped) return;
    this.stopped = true;
    this.tap.stop();
    if (why !== undefined) {
      this.record.note('portForwardStats', `stopped: ${why}`);
      this.log.debug({ why }, 'port-forward observer stopped watching');
    }
    for (const [id, c] of [...this.connections]) this.finish(id, c, 'session ended');
    this.errorStreams.clear();
    this.unpaired.clear();
  }

  /** Reading the session threw: a bug of ours, not the peer's. The session ends as an internal error. */
  private internalError(direction: TapDirectionName, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.log.error(
      { err, direction },
      'bug: the port-forward observer failed reading a relayed session; ending it',
    );
    this.stop(`internal error: ${message}`);
    this.record.outcome = 'error';
    this.record.abort(`internal error in the port-forward observer: ${message}`);
  }
}

/** Streams pair by `requestid`; clients without one pair error = id, data = id + 2 (§4.1). */
function requestKey(id: number, headers: HeaderMap): string {
  const request = headers['requestid'];
  if (request) return request;
  return `#${headers['streamtype'] === 'data' ? id - 2 : id}`;
}
