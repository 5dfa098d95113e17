/**
 * What the load generators and the upstreams agree on: request paths, the three programs an exec
 * runs (real commands, so that the emulator runs them as processes and the lean upstream plays
 * them), the port-forward "download" port, and the write size.
 */

/** kubectl, containerd and the apiserver all copy streams through 32 KiB buffers (docs/protocols.md §3.3.2, §4.3). */
export const CHUNK = 32 * 1024;

export const POD_PATH = '/api/v1/namespaces/default/pods/demo';
export const PORTFORWARD_PATH = `${POD_PATH}/portforward`;

/**
 * Port-forward "download" port of the lean upstream: the client writes a decimal byte count and a
 * newline on the data stream; the pod answers with that many bytes and ends the stream.
 */
export const DOWNLOAD_PORT = 9000;

export type Program = { kind: 'source'; bytes: number } | { kind: 'sink' } | { kind: 'echo' };

/** The command line of each program. */
export function programArgv(p: Program): string[] {
  switch (p.kind) {
    case 'source':
      return ['head', '-c', String(p.bytes), '/dev/zero'];
    case 'sink':
      return ['wc', '-c'];
    case 'echo':
      return ['cat'];
  }
}

/** The program a command line means, for the lean upstream; undefined for anything else. */
export function parseProgram(argv: string[]): Program | undefined {
  const line = argv.join(' ');
  const source = /^head -c (\d+) \/dev\/zero$/.exec(line);
  if (source) return { kind: 'source', bytes: Number(source[1]) };
  if (line === 'wc -c') return { kind: 'sink' };
  if (line === 'cat') return { kind: 'echo' };
  return undefined;
}

/** The exec request kubectl would send for `program` (stderr requested as kubectl does without a TTY). */
export function execPath(p: Program): string {
  const q = new URLSearchParams();
  for (const arg of programArgv(p)) q.append('command', arg);
  q.set('container', 'demo');
  if (p.kind !== 'source') q.set('stdin', 'true');
  q.set('stdout', 'true');
  q.set('stderr', 'true');
  return `${POD_PATH}/exec?${q}`;
}
