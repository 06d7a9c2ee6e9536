#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (built by `npm install` through the prepare script).
// `sidecar` runs from the bundled file when the build made one (scripts/bundle-sidecar.mjs: about
// 2 MB less per pod); every other command, and a build by tsc alone, from dist/src.
import { statSync } from 'node:fs';

const argv = process.argv.slice(2);
const bundle = new URL('../dist/sidecar/main.mjs', import.meta.url);
const compiled = new URL('../dist/src/cli/main.js', import.meta.url);
const { main } = await import(commandOf(argv) === 'sidecar' && bundleIsCurrent() ? bundle.href : compiled.href);

main(argv).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  (err) => { console.error(err); process.exitCode = 1; },
);

/** The command named on the line: the first argument that is not one of the options every command takes. */
function commandOf(args) {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--log-level' || args[i] === '--log-format') i++;
    else if (args[i] !== '--allow-unknown-fields' && !/^--log-(level|format)=/.test(args[i])) return args[i];
  }
  return undefined;
}

/**
 * The bundle is made from dist/src after tsc; tsc alone (a developer's rebuild) rewrites dist/src and
 * leaves an older bundle, which would run yesterday's sidecar: then dist/src runs.
 */
function bundleIsCurrent() {
  const built = modified(bundle);
  if (built === undefined) return false;
  const compiledAt = modified(compiled);
  return compiledAt === undefined || built >= compiledAt;
}

function modified(url) {
  try {
    return statSync(url).mtimeMs;
  } catch {
    return undefined;
  }
}
