/** The Node.js binaries scripts/fetch-node.sh caches beside kubectl and helm (22, 24 and 26). */
import { existsSync } from 'node:fs';
import { symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { releaseToolsDirectory } from './kubectl.js';

export const OTHER_NODE_MAJORS = ['22', '24', '26'] as const;

export function nodePath(major: (typeof OTHER_NODE_MAJORS)[number]): string {
  const file = join(releaseToolsDirectory(), `node-${major}`);
  if (!existsSync(file)) throw new Error(`${file} is missing: run scripts/fetch-node.sh (npm run ci does)`);
  return file;
}

/** `dir/node` → that binary, so that a `#!/usr/bin/env node` script with `dir` first on PATH runs on it. */
export async function linkNode(major: (typeof OTHER_NODE_MAJORS)[number], dir: string): Promise<string> {
  await symlink(nodePath(major), join(dir, 'node'));
  return dir;
}
