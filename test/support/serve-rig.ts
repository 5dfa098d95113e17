/**
 * `kubeshim serve` as real processes in front of one emulator (`legacy`), for a test file: the
 * emulator and a home for the processes start before the file's tests; what the tests start through
 * the rig (serve processes, kubectl homes, kubectl runs) is stopped after them, last started first.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { after, before } from 'node:test';
import { type Emulator, startEmulator } from '../../src/emulator/index.js';
import { type KubeEnv, makeKubeEnv, startKubectl } from './kubectl.js';
import { type ServeProcess, type StartServeOptions, startServe } from './processes.js';

export interface ServeRig {
  /** Available once the file's `before` hooks ran. */
  readonly emu: Emulator;
  /** PATH and a HOME (a kubectl home for the emulator) for the processes. */
  env(): NodeJS.ProcessEnv;
  /** `kubeshim serve --upstream <the emulator> <args>`. */
  serve(args: string[], options?: StartServeOptions): Promise<ServeProcess>;
  /** A kubectl home whose server is `shim`. */
  kubeFor(shim: ServeProcess): Promise<KubeEnv>;
  /** kubectl `version` running `sh -c script` in the demo pod through `shim`, in a home of its own. */
  exec(shim: ServeProcess, version: '1.28' | '1.33', script: string): Promise<Exec>;
}

export interface Exec extends ReturnType<typeof startKubectl> {
  /** kubectl's exit code. */
  exited: Promise<number | null>;
}

/** The exit code `child` ends with (null when a signal ended it). */
export function exitCode(child: ChildProcess): Promise<number | null> {
  return once(child, 'exit').then(([code]) => code as number | null);
}

/** Call at the top of a test file: registers the file's `before` and `after` hooks. */
export function serveRig(): ServeRig {
  let emu: Emulator | undefined;
  let home: KubeEnv | undefined;
  const cleanups: (() => unknown)[] = [];
  before(async () => {
    emu = await startEmulator({ generation: 'legacy' });
    home = await makeKubeEnv(emu.url);
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    await home?.cleanup();
    await emu?.close();
  });
  const env = () => ({ PATH: process.env.PATH, HOME: home!.home });
  const kubeFor = async (shim: ServeProcess) => {
    const kube = await makeKubeEnv(shim.url);
    cleanups.push(() => kube.cleanup());
    return kube;
  };
  return {
    get emu() {
      return emu!;
    },
    env,
    serve: async (args, options) => {
      const s = await startServe(['--upstream', emu!.url, ...args], env(), options);
      cleanups.push(() => s.stop());
      return s;
    },
    kubeFor,
    exec: async (shim, version, script) => {
      const kube = await kubeFor(shim);
      const k = startKubectl(version, ['exec', 'demo', '--', 'sh', '-c', script], { env: kube.env });
      cleanups.push(() => k.stop());
      return { ...k, exited: exitCode(k.child) };
    },
  };
}
