#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (built by `npm install` through the prepare script).
// `sidecar` runs from the bundled file when the build made one (scripts/bundle-sidecar.mjs: about
// 2.5 MB less per pod); every other command, and a build by tsc alone, from dist/src.
import { existsSync } from 'node:fs';

const argv = process.argv.slice(2);
const bundle = new URL('../dist/sidecar/main.mjs', import.meta.url);
const { main } = await import(commandOf(argv) === 'sidecar' && existsSync(bundle) ? bundle.href : '../dist/src/cli/main.js');

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
