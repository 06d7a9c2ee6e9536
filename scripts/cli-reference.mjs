// Writes docs/reference/cli.md from the commands' own --help texts, so the reference cannot drift from
// the program: `npm run build && node scripts/cli-reference.mjs`. test/cli-reference.test.ts checks
// that the committed page is what this prints.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/meshgate.js', import.meta.url));
const COMMANDS = ['gateway', 'sidecar', 'control', 'demo', 'validate', 'analyze', 'routes', 'explain', 'certs', 'inject', 'wait', 'request', 'iptables', 'dashboard'];

export function cliReference() {
  const help = (args) => execFileSync(process.execPath, [BIN, ...args], { encoding: 'utf8' }).trimEnd();
  const parts = [
    '# Command reference',
    '',
    "Every `meshgate` command and flag, as `--help` prints it (this page is generated from those texts by",
    '`scripts/cli-reference.mjs`, and a test keeps it so). Options every command takes: `--allow-unknown-fields`,',
    '`--log-level`, `--log-format`.',
    '',
    '```text',
    help(['--help']),
    '```',
  ];
  for (const c of COMMANDS) parts.push('', `## meshgate ${c}`, '', '```text', help([c, '--help']), '```');
  parts.push('', '[Docs index](../README.md)', '');
  return parts.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) writeFileSync(fileURLToPath(new URL('../docs/reference/cli.md', import.meta.url)), cliReference());
