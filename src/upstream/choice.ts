/**
 * `--upstream-protocol auto` memory (docs/design.md "The translation table"): when the client's own
 * protocol was refused upstream and the other one worked, remember that for a while, per upstream,
 * subresource and client protocol, so the next session skips the doomed first try.
 */
export type UpstreamProtocol = 'spdy' | 'websocket';

/** `--upstream-protocol`: one protocol upstream always, or `auto` (the client's own first, then the other). */
export type UpstreamMode = 'auto' | UpstreamProtocol;

interface Entry {
  protocol: UpstreamProtocol;
  expires: number;
}

export class ProtocolChoices {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly ttlMs: number) {}

  static key(upstream: string, subresource: string, clientProtocol: string): string {
    return `${upstream} ${subresource} ${clientProtocol}`;
  }

  get(key: string): UpstreamProtocol | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (e.expires <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.protocol;
  }

  remember(key: string, protocol: UpstreamProtocol): void {
    this.entries.set(key, { protocol, expires: Date.now() + this.ttlMs });
  }

  forget(key: string): void {
    this.entries.delete(key);
  }
}
