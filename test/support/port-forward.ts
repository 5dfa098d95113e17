/**
 * Connections through a real `kubectl port-forward` to a pod port that echoes (the demo pod's 8080).
 */
import { connect } from 'node:net';
import { type KubectlVersion, startKubectl } from './kubectl.js';
import { freePort, waitFor, withTimeout } from './wait.js';

/** Start kubectl port-forward, send a line through it, and return what came back; kubectl is stopped. */
export async function echoThroughPortForward(
  version: KubectlVersion,
  env: NodeJS.ProcessEnv,
  podPort = 8080,
): Promise<{ sent: string; echoed: string; output: string }> {
  const local = await freePort();
  const pf = startKubectl(version, ['port-forward', 'demo', `${local}:${podPort}`], { env });
  const sent = `ping through kubectl ${version}\n`;
  try {
    await waitFor(`kubectl ${version} port-forward`, () => pf.output().includes('Forwarding from'), 20_000);
    const echoed = await withTimeout(
      new Promise<string>((resolve, reject) => {
        const s = connect(local, '127.0.0.1', () => s.end(sent));
        let got = '';
        s.on('data', (d: Buffer) => {
          got += d.toString();
        });
        s.on('end', () => resolve(got));
        s.on('error', reject);
      }),
      10_000,
      'the echo through port-forward',
    );
    return { sent, echoed, output: pf.output() };
  } finally {
    await pf.stop();
  }
}

/** Send `payload` to the local `port`, half-close, and collect what comes back until the peer closes. */
export function sendAndCollect(port: number, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(port, '127.0.0.1', () => socket.end(payload));
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks)));
  });
}
