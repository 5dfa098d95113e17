/**
 * @kubernetes/client-node, loaded on first use. Importing it costs about 27 MiB of V8 heap and
 * 70 MiB of RSS (its KubeConfig comes with the whole generated API client), which the bastion form
 * (`serve --upstream URL`, no kubeconfig) never uses. Loaded synchronously, with require(): the
 * kubeconfig is read by synchronous code, and Node ≥ 20.19 (package.json "engines") requires an ES
 * module without a warning. Everything else takes the package's types only (`import type`).
 */
import { createRequire } from 'node:module';

type ClientNode = typeof import('@kubernetes/client-node');
type ExecAuthModule = typeof import('@kubernetes/client-node/dist/exec_auth.js');

let clientNodeModule: ClientNode | undefined;
let execAuthModule: ExecAuthModule | undefined;

/** The package's main module (KubeConfig, loadYaml, dumpYaml). */
export function clientNode(): ClientNode {
  clientNodeModule ??= (
    bundled() ? require('@kubernetes/client-node') : load('@kubernetes/client-node')
  ) as ClientNode;
  return clientNodeModule;
}

/** Its exec credential plugin runner, which the main module does not export. */
export function execAuth(): ExecAuthModule['ExecAuth'] {
  execAuthModule ??= (
    bundled()
      ? require('@kubernetes/client-node/dist/exec_auth.js')
      : load('@kubernetes/client-node/dist/exec_auth.js')
  ) as ExecAuthModule;
  return execAuthModule.ExecAuth;
}

/**
 * True in the single executable's CommonJS bundle (scripts/build-binary.sh), where `require` is
 * esbuild's: it bundled the package from the literal specifiers above, and import.meta is empty.
 */
function bundled(): boolean {
  return typeof require === 'function';
}

function load(specifier: string): unknown {
  return createRequire(import.meta.url)(specifier);
}
