// `meshgate <command>`: each command only parses its options and calls into a role or the core.

import { runGatewayCommand } from './gateway.js';
import { runValidate } from './validate.js';
import { runRoutes } from './routes.js';
import { runExplain } from './explain.js';
import { runCerts } from './certs.js';
import { setAllowUnknownFields } from '../core/config/field-policy.js';

const COMMANDS: Record<string, { summary: string; run: (argv: string[]) => Promise<number> }> = {
  gateway: { summary: 'run the ingress gateway on a config folder', run: runGatewayCommand },
  control: { summary: 'run the control plane: config stream and CA for proxies', run: async (argv) => (await import('./control.js')).runControlCommand(argv) },
  sidecar: { summary: 'run the proxy beside one workload: mTLS in and out, policies', run: async (argv) => (await import('./sidecar.js')).runSidecarCommand(argv) },
  validate: { summary: 'check each resource of a config folder (fast); exit 1 on errors', run: runValidate },
  analyze: { summary: 'find mistakes across resources (Istio analyzer codes); exit 1 by severity', run: async (argv) => (await import('./analyze.js')).runAnalyze(argv) },
  routes: { summary: 'print the compiled routing table', run: runRoutes },
  explain: { summary: 'show which server, route and destination a request gets, and why not others', run: runExplain },
  certs: { summary: 'list the certificates the gateway serves, with problems', run: runCerts },
  demo: { summary: 'run the demo: backends plus a gateway on gateway-config/', run: async (argv) => (await import('./demo.js')).runDemo(argv) },
};

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    'usage: meshgate <command> [options]',
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'options for every command:',
    '  --allow-unknown-fields  an unknown field in the config is a warning, not an error (Istio\'s',
    '                          schema and kubectl apply refuse them; use this for config written',
    '                          for a newer Istio)',
    '',
    "run 'meshgate <command> --help' for a command's options",
  ].join('\n');
}

/** Options every command takes, anywhere on the line; read here once, before the command runs. */
const GLOBAL_FLAGS = ['--allow-unknown-fields'];

export async function main(argv: string[]): Promise<number> {
  const allowUnknown = argv.includes('--allow-unknown-fields');
  if (allowUnknown) setAllowUnknownFields(true);
  const [command, ...rest] = argv.filter((a) => !GLOBAL_FLAGS.includes(a));
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(usage());
    return 0;
  }
  const c = COMMANDS[command];
  if (!c) {
    console.error(`meshgate: unknown command '${command}'\n\n${usage()}`);
    return 2;
  }
  try {
    return await c.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`meshgate ${command}: ${err.message}`);
      return 2;
    }
    if (err instanceof CommandError) {
      console.error(`meshgate ${command}: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

/** The command line is wrong: the message, exit code 2. */
export class UsageError extends Error {}

/** The command cannot do its work (a config folder that is not there): the message, exit code 1. */
export class CommandError extends Error {}
