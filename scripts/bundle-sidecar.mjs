// The sidecar's code as one file (dist/sidecar/main.mjs), run after tsc: `bin/meshgate.js sidecar`
// starts it when it is there. One module instead of some 250 keeps Node's module loader from getting
// hot enough for V8's optimizing compiler before the sidecar serves, and V8 holds one module record
// and one (minified) text: about 2.5 MB less per pod (docs/benchmarks.md, the tenth round).
//
// What must hold: every module of meshgate's the sidecar can load is in the bundle exactly once, so
// module state (the --allow-unknown-fields policy, the logger's settings, metric registries) has one
// copy. Hence:
// - `whenNeeded(specifier, import.meta.url)` (core/runtime/when-needed.ts) becomes a lazy require()
//   the bundler follows: the module is in the file, run on its first use as before;
// - import() of meshgate's own modules (the admin server, the DNS proxy) are split points: they load
//   from chunks beside the file, sharing one copy of what they import with the rest;
// - undici's Pool and pino, which every sidecar loads (by createRequire, for why see their files), are
//   in the file: their some 80 CommonJS modules resolved at start-up are what the bundle saves most;
// - every other package stays outside, loaded by Node as today (import() of jose, createRequire of the
//   optional ones): one copy each, as Node caches them;
// - the other commands are not in the file: bin/meshgate.js gives it only `sidecar`.

import { build } from 'esbuild';
import { readFile, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const outdir = `${root}dist/sidecar`;
const cliDir = `${root}dist/src/cli/`;
const OTHER_COMMANDS = /^\.\/(gateway|control|validate|analyze|routes|explain|certs|inject|wait|request|iptables|demo|dashboard)\.js$/;
const WHEN_NEEDED = /\bwhenNeeded\(([^()]+?), import\.meta\.url\)/g;
const IN_THE_FILE = ['pino', 'undici/lib/dispatcher/pool.js'];
const REQUIRE_IN_THE_FILE = new RegExp(`\\bcreateRequire\\(import\\.meta\\.url\\)\\((['"])(${IN_THE_FILE.join('|').replaceAll('.', '\\.')})\\1\\)`, 'g');
const isMeshgate = (file) => file.startsWith(`${root}dist/src/`);

/** whenNeeded's targets as lazy requires in the same file; the other commands left out of it. */
const sidecarOnly = {
  name: 'sidecar-only',
  setup(b) {
    b.onResolve({ filter: OTHER_COMMANDS }, (args) => (args.importer === `${cliDir}main.js` ? { path: args.path, namespace: 'not-in-bundle' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'not-in-bundle' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`${args.path} is not in the sidecar's bundle: run it from dist/src/cli/main.js`)});`,
      loader: 'js',
    }));
    // A package named from meshgate's code is left to Node unless it is one of IN_THE_FILE; what those
    // import in turn is followed.
    b.onResolve({ filter: /^[^./]/ }, (args) => (isMeshgate(args.importer) && !args.path.startsWith('node:') && !IN_THE_FILE.includes(args.path) ? { path: args.path, external: true } : undefined));
    b.onLoad({ filter: /\/dist\/src\/.*\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (!text.includes('whenNeeded(') && !text.includes('createRequire(import.meta.url)')) return undefined;
      const contents = text
        .replace(WHEN_NEEDED, (_, specifier) => `__meshgateLazy(() => require(${specifier}))`)
        .replace(REQUIRE_IN_THE_FILE, (_, quote, specifier) => `require(${quote}${specifier}${quote})`);
      return { contents, loader: 'js' };
    });
  },
};

await rm(outdir, { recursive: true, force: true });
const result = await build({
  entryPoints: { main: `${cliDir}main.js` },
  outdir,
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunk-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minifyWhitespace: true,
  minifySyntax: true,
  keepNames: true,
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [sidecarOnly],
  banner: {
    js: [
      "import { createRequire as __meshgateCreateRequire } from 'node:module';",
      'const require = __meshgateCreateRequire(import.meta.url);',
      'const __meshgateLazy = (load) => { let loaded; return () => (loaded ??= load()); };',
    ].join('\n'),
  },
});
if (result.errors.length > 0) process.exit(1);
