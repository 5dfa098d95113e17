/**
 * The direction of imports in src/ (docs/design.md, "Architecture"): data flows from the commands
 * down through the server and the bridges to the codecs, and no import runs the other way. Every
 * import of every file is read — static, type-only, `export … from` and dynamic `import()` — and
 * one that breaks a rule below fails the test with its file, line and specifier.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';

/** A place in src/: a top-level folder (`spdy`), or a file directly in src/ (`cli.ts`). */
type Place = string;

interface Rule {
  /** The importing places; `*` is every place. */
  from: Place[];
  /** Places in `from` the rule does not hold for. */
  except?: Place[];
  /** What those places may not import. */
  mayNotImport: Place[];
  because: string;
}

const CODECS = ['spdy', 'channel', 'io', 'k8s'];

/** Add a row to extend the check. */
const RULES: Rule[] = [
  {
    from: CODECS,
    mayNotImport: ['bridge', 'server', 'emulator', 'commands', 'record', 'doctor', 'remotecommand'],
    because: 'the codecs and the Kubernetes facts sit below everything that uses them',
  },
  {
    from: ['emulator'],
    mayNotImport: ['server', 'bridge'],
    because: 'the emulator is an upstream, never a shim',
  },
  {
    from: ['upstream'],
    mayNotImport: ['server', 'bridge'],
    because: 'dialing the upstream knows nothing of the listener or the translators',
  },
  {
    from: ['bridge'],
    mayNotImport: ['server', 'emulator', 'doctor'],
    because: 'a bridge composes endpoints for the router; it does not know who routes to it',
  },
  {
    from: ['doctor'],
    mayNotImport: ['server', 'bridge', 'emulator'],
    because: 'the doctor is a client of the path: it dials like kubectl and shares only the codecs',
  },
  {
    from: ['observe', 'record'],
    mayNotImport: ['server', 'emulator', 'doctor'],
    because: 'logs, metrics and recordings are told about sessions; they do not reach into the listener',
  },
  {
    from: ['remotecommand'],
    mayNotImport: ['server', 'bridge', 'emulator', 'commands'],
    because: 'the exec protocol is composed by the bridges and the emulator, not the reverse',
  },
  {
    from: ['warmup'],
    mayNotImport: ['emulator', 'doctor', 'record', 'commands'],
    because:
      "the warm-up carries sessions through the shim's own code, from the shim's own clients to an echo of its own endpoints",
  },
  {
    from: ['*'],
    except: ['commands', 'warmup'],
    mayNotImport: ['warmup'],
    because: 'only serve warms a process up: nothing on the path of a session knows of it',
  },
  {
    from: ['*'],
    except: ['commands', 'cli.ts'],
    mayNotImport: ['commands'],
    because: 'the commands sit on top: only cli.ts and other commands import them',
  },
];

interface SourceFile {
  /** Relative to src/, with `/` (`server/listener.ts`). */
  path: string;
  text: string;
}

function placeOf(path: string): Place {
  return path.split('/')[0]!;
}

function applies(rule: Rule, place: Place): boolean {
  return (rule.from.includes('*') || rule.from.includes(place)) && !rule.except?.includes(place);
}

/** One line per import that breaks a rule; empty when none does. */
function importViolations(files: SourceFile[], rules: Rule[] = RULES): string[] {
  const found: string[] = [];
  for (const file of files) {
    const place = placeOf(file.path);
    const binding = rules.filter((r) => applies(r, place));
    if (binding.length === 0) continue;
    for (const ref of ts.preProcessFile(file.text, true, true).importedFiles) {
      if (!ref.fileName.startsWith('.')) continue; // a package, not a part of src/
      const target = posix.normalize(posix.join(posix.dirname(file.path), ref.fileName));
      if (target.startsWith('../')) continue; // outside src/ (package.json)
      for (const rule of binding) {
        if (!rule.mayNotImport.includes(placeOf(target))) continue;
        const line = file.text.slice(0, ref.pos).split('\n').length;
        found.push(
          `src/${file.path}:${line} imports '${ref.fileName}' (${placeOf(target)}/): ${rule.because}`,
        );
      }
    }
  }
  return found;
}

function sourcesUnder(root: string, dir = ''): SourceFile[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = dir === '' ? entry.name : `${dir}/${entry.name}`;
    if (entry.isDirectory()) return sourcesUnder(root, path);
    return entry.name.endsWith('.ts') ? [{ path, text: readFileSync(join(root, path), 'utf8') }] : [];
  });
}

test('no import in src/ runs against the direction of the layers', () => {
  const files = sourcesUnder(join(import.meta.dirname, '../../src'));
  assert.ok(files.length > 50, `read src/ (${files.length} files)`);
  assert.deepEqual(importViolations(files), []);
});

/** A violation without its reason: `src/FILE:LINE imports 'SPECIFIER' (PLACE/)`. */
const located = (v: string) => v.slice(0, v.indexOf(')') + 1);

test('the check names the file, the line and the import that break a rule, in every form of import', () => {
  const files: SourceFile[] = [
    {
      path: 'spdy/session.ts',
      text: "import { a } from './frame-parser.js';\nimport { b } from '../server/x.js';\n",
    },
    { path: 'k8s/status.ts', text: "export type { C } from '../bridge/c.js';\n" },
    {
      path: 'emulator/api.ts',
      text: "// import { no } from '../server/comment.js';\nconst m = await import('../bridge/d.js');\n",
    },
    { path: 'upstream/dial.ts', text: "import type {\n  T,\n} from '../server/t.js';\n" },
    { path: 'server/serve.ts', text: "import { serveCommand } from '../commands/serve.js';\n" },
  ];
  const found = importViolations(files);
  assert.deepEqual(found.map(located), [
    "src/spdy/session.ts:2 imports '../server/x.js' (server/)",
    "src/k8s/status.ts:1 imports '../bridge/c.js' (bridge/)",
    "src/emulator/api.ts:2 imports '../bridge/d.js' (bridge/)",
    "src/upstream/dial.ts:3 imports '../server/t.js' (server/)",
    "src/server/serve.ts:1 imports '../commands/serve.js' (commands/)",
  ]);
  assert.match(found[0]!, /\(server\/\): the codecs and the Kubernetes facts sit below/);
});

test('what the rules allow passes: cli.ts and commands import commands, the server imports the codecs', () => {
  const files: SourceFile[] = [
    { path: 'cli.ts', text: "const c = await import('./commands/serve.js');\n" },
    {
      path: 'commands/serve.ts',
      text: "import { x } from './command-line.js';\nimport { y } from '../server/serve.js';\n",
    },
    { path: 'server/listener.ts', text: "import { z } from '../k8s/status.js';\nimport ws from 'ws';\n" },
    { path: 'spdy/session.ts', text: "import pkg from '../../package.json' with { type: 'json' };\n" },
  ];
  assert.deepEqual(importViolations(files), []);
});
