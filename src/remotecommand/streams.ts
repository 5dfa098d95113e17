/**
 * Which streams an exec/attach session has (docs/protocols.md §3.1, §3.2): counted from the query,
 * not from what the client opens, in client-go's opening order.
 */

import { CH_ERROR, CH_RESIZE, CH_STDERR, CH_STDIN, CH_STDOUT } from '../channel/codec.js';
import type { RemoteCommandVersion } from '../k8s/protocols.js';
import type { ExecStreams } from '../k8s/stream-request.js';

export type StreamType = 'error' | 'stdin' | 'stdout' | 'stderr' | 'resize';

/** client-go's and the CRI's stream creation timeout (§7). */
export const STREAM_CREATION_TIMEOUT_MS = 30_000;

/**
 * The streams a query promises, in the order client-go opens them: error, stdin, stdout, stderr
 * (never with a TTY: the terminal merges it into stdout), resize (with a TTY, v3 and later).
 */
export function promisedStreams(wants: ExecStreams, version: RemoteCommandVersion): StreamType[] {
  const types: StreamType[] = ['error'];
  if (wants.stdin) types.push('stdin');
  if (wants.stdout) types.push('stdout');
  if (stderrPromised(wants)) types.push('stderr');
  if (wants.tty && version.resize) types.push('resize');
  return types;
}

/** Stream types a server of this version knows; others are replied to and not counted (§3.2). */
export function knownStreamType(type: string | undefined, version: RemoteCommandVersion): type is StreamType {
  return (
    type === 'error' ||
    type === 'stdin' ||
    type === 'stdout' ||
    type === 'stderr' ||
    (type === 'resize' && version.resize)
  );
}

/** The channel of the empty "established" message: the lowest writable one requested (§3.3). */
export function establishedChannel(wants: ExecStreams): number {
  if (wants.stdout) return CH_STDOUT;
  return stderrPromised(wants) ? CH_STDERR : CH_ERROR;
}

/** A TTY merges stderr into stdout: it never has a stream of its own (§3.1). */
export function stderrPromised(wants: ExecStreams): boolean {
  return wants.stderr && !wants.tty;
}

/** The WebSocket channel that carries what a SPDY stream of this type carries (§3.3). */
const STREAM_CHANNELS: ReadonlyMap<string, number> = new Map([
  ['stdin', CH_STDIN],
  ['stdout', CH_STDOUT],
  ['stderr', CH_STDERR],
  ['error', CH_ERROR],
  ['resize', CH_RESIZE],
]);

/** The channel of a stream type, or undefined for a type that is not one of remotecommand's. */
export function streamChannel(type: string | undefined): number | undefined {
  return STREAM_CHANNELS.get(type ?? '');
}
