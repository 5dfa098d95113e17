/**
 * port-forward: a legacy WebSocket client (`ports=` in the query, channel pairs, docs/protocols.md §4.2)
 * in front of a SPDY port-forward session (§4.1) — reached over a raw SPDY upgrade or a WebSocket
 * tunnel, the caller decides. For the i-th port: channel 2i carries data both ways and is backed by a
 * SPDY `data` stream; channel 2i+1 carries errors from the server to the client only, backed by a
 * SPDY `error` stream (a proxy that copies errors both ways keeps clients alive after the pod is
 * gone, §9). The WebSocket closes once every pair has finished. An upstream connection that ends
 * first (reset, or closed without finishing the streams) is no finish: the pairs still open are told
 * on their error channels and the WebSocket closes with 1011.
 *
 * The session line has the figures the observer gives relayed sessions (portforward-observer.ts):
 * `ports`, `connections` (one per port, §4.2) and `forwards` (per port: bytes each way, errors).
 */
import type { RawData, WebSocket } from 'ws';
import { decodeMessage, encodePortPreamble } from '../channel/codec.js';
import { sendChannel } from '../channel/send.js';
import type { Logger } from '../observe/logger.js';
import { pipe } from '../remotecommand/flow.js';
import { StreamSink, StreamSource } from '../remotecommand/spdy-stream-io.js';
import { ChannelSink, ChannelSource, PauseGate } from '../remotecommand/ws-channel-io.js';
import type { SpdySession } from '../spdy/session.js';
import { clientProtocolError, onClientProtocolError } from './client-protocol-error.js';
import { type KeepaliveOptions, keepWebSocketAlive } from './keepalive.js';
import type { PortFigures } from './portforward-observer.js';
import type { SessionRecord } from './session-record.js';

export interface LegacyPortForwardParams {
  client: WebSocket;
  /** `v4.base64.channel.k8s.io` uses text frames with base64 payloads. */
  base64: boolean;
  ports: number[];
  upstream: SpdySession;
  record: SessionRecord;
  log: Logger;
  keepalive: KeepaliveOptions;
}

/** Ports of a legacy request: `ports=8080&ports=9090` (apiserver) or `port=8080,9090` (kubelet). */
export function legacyPorts(query: URLSearchParams): number[] {
  const raw = [...query.getAll('ports'), ...query.getAll('port')].flatMap((v) => v.split(','));
  // decimal digits only, as the kubelet's ParseUint(s, 10, 16): `0x1f90`, `8.08e3`, ` 8080` are not ports
  return raw.filter((p) => p !== '').map((p) => (/^\d{1,5}$/.test(p) ? Number(p) : Number.NaN));
}

/** Ports a channel byte can address: a pair of channels each (§4.2), numbered up to 255. */
export const MAX_LEGACY_PORTS = 128;

export function validPorts(ports: number[]): boolean {
  return (
    ports.length > 0 &&
    ports.length <= MAX_LEGACY_PORTS &&
    ports.every((p) => Number.isInteger(p) && p > 0 && p < 65536)
  );
}

export function bridgeLegacyPortForward(p: LegacyPortForwardParams): Promise<void> {
  return new LegacyPortForward(p).run();
}

class LegacyPortForward {
  /** What the client sends on each pair's data channel. */
  private readonly fromClient: (ChannelSource | undefined)[] = [];
  /** The client is read once every pair is open, and only as fast as the upstream takes it. */
  private readonly gate: PauseGate;
  /** Figures of each pair's port (a port named twice shares one entry). */
  private readonly figures: PortFigures[];
  private connections = 0;
  /** Streams (data and error of every pair) still to end before the WebSocket closes. */
  private open: number;
  /** Streams of each pair that ended while the upstream connection was up (2: the pair is done). */
  private readonly ended: number[];
  private finished = false;
  private stopKeepalive: () => void = () => {};
  private resolveDone: () => void = () => {};

  constructor(private readonly p: LegacyPortForwardParams) {
    this.gate = new PauseGate(p.client);
    this.open = p.ports.length * 2;
    this.ended = p.ports.map(() => 0);
    const perPort: Record<string, PortFigures> = {};
    this.figures = p.ports.map(
      (port) => (perPort[port] ??= { connections: 0, bytesIn: 0, bytesOut: 0, errors: 0 }),
    );
    p.record.note('portForwardStats', 'translator');
    p.record.note('ports', p.ports);
    p.record.note('connections', 0);
    p.record.note('forwards', perPort);
  }

  run(): Promise<void> {
    const { client, upstream, ports } = this.p;
    const done = new Promise<void>((resolve) => {
      this.resolveDone = resolve;
    });
    this.p.record.onAbort((reason) => {
      for (let i = 0; i < ports.length; i++) this.send(2 * i + 1, Buffer.from(reason));
      this.closeClient();
      this.end(reason, 'error');
    });
    this.gate.hold();
    client.on('message', (data: RawData, isBinary: boolean) =>
      this.onClientMessage(data as Buffer, isBinary),
    );
    client.on('close', () => this.end('client closed the connection', 'success'));
    onClientProtocolError(client, (reason) => this.end(reason, 'error'));
    upstream.on('close', (err) => this.upstreamClosed(err));
    this.stopKeepalive = keepWebSocketAlive(client, this.p.keepalive, (why) => {
      client.terminate();
      this.end(`client ${why}`, 'error');
    });
    // the port preamble, on both channels of every pair, before anything else (§4.2)
    ports.forEach((port, i) => {
      this.send(2 * i, encodePortPreamble(port));
      this.send(2 * i + 1, encodePortPreamble(port));
    });
    Promise.all(ports.map((port, i) => this.openPair(port, i))).then(
      () => {
        if (!this.finished) this.gate.release();
      },
      (err: Error) => {
        for (let i = 0; i < ports.length; i++) {
          this.send(2 * i + 1, Buffer.from(`error creating forwarding stream: ${err.message}`));
        }
        this.closeClient();
        this.end(`could not open the upstream streams: ${err.message}`, 'error');
      },
    );
    return done;
  }

  /** Error stream first and half-closed at once, then the data stream — what kubectl does (§4.1). */
  private async openPair(port: number, i: number): Promise<void> {
    const { upstream, record } = this.p;
    const headers = { port: String(port), requestid: String(i) };
    const figures = this.figures[i]!;
    const error = await upstream.openStream({ streamtype: 'error', ...headers });
    error.end();
    let failed = false;
    error.on('data', (chunk: Buffer) => {
      if (!failed) figures.errors++;
      failed = true;
      this.send(2 * i + 1, chunk);
    });
    error.once('end', () => this.streamEnded(i));
    const data = await upstream.openStream({ streamtype: 'data', ...headers });
    figures.connections++;
    record.note('connections', ++this.connections);
    const fromClient = new ChannelSource(this.gate);
    this.fromClient[i] = fromClient;
    pipe(fromClient, new StreamSink(data), (chunk) => {
      record.bytesIn += chunk.length;
      figures.bytesIn += chunk.length;
    });
    pipe(new StreamSource(data), new ChannelSink(this.p.client, 2 * i, this.p.base64), (chunk) => {
      record.bytesOut += chunk.length;
      figures.bytesOut += chunk.length;
    });
    data.once('end', () => this.streamEnded(i));
  }

  private onClientMessage(raw: Buffer, isBinary: boolean): void {
    if (this.finished) return;
    let msg: ReturnType<typeof decodeMessage>;
    try {
      msg = decodeMessage(raw, this.p.base64 ? isBinary : true, this.p.base64);
    } catch (err) {
      this.p.log.warn({ err: (err as Error).message }, 'client protocol error');
      this.p.client.close(1002, 'protocol error');
      this.end(clientProtocolError((err as Error).message), 'error');
      return;
    }
    if (msg === null || msg.channel % 2 === 1) return; // error channels flow only toward the client
    this.fromClient[msg.channel / 2]?.deliver(msg.payload);
  }

  private send(channel: number, payload: Buffer): void {
    sendChannel(this.p.client, channel, payload, this.p.base64);
  }

  private streamEnded(pair: number): void {
    // streams ended by the session's own end are no finish: upstreamClosed has the last word
    if (this.finished || this.p.upstream.closed) return;
    this.ended[pair]!++;
    if (--this.open > 0) return;
    this.closeClient();
    this.end('all forwarded connections finished', 'success');
  }

  /** The upstream connection is gone with pairs still open: never a silent end (docs/design.md). */
  private upstreamClosed(err: Error | undefined): void {
    if (this.finished) return;
    const why = `the upstream connection ${err ? `failed: ${err.message}` : 'ended'}`;
    this.p.ports.forEach((_, i) => {
      if (this.ended[i]! < 2) this.send(2 * i + 1, Buffer.from(why));
    });
    this.closeClient(1011);
    this.end(why, 'error');
  }

  private closeClient(code = 1000): void {
    const { client } = this.p;
    this.gate.dispose();
    if (client.readyState === client.OPEN) client.close(code);
  }

  private end(reason: string, outcome: 'success' | 'error'): void {
    if (this.finished) return;
    this.finished = true;
    this.stopKeepalive();
    this.gate.dispose();
    this.p.upstream.close();
    this.p.record.finish(reason, outcome);
    this.resolveDone();
  }
}
