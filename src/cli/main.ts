// `meshgate <command>`: each command only parses its options and calls into a role or the core.
// Every command is imported when it runs, never before: a sidecar then loads only what a sidecar runs
// (no ACME client, no Kubernetes client, no certificate authority), which is most of its memory.
import { setFlagsFromString } from 'node:v8';
import { setAllowUnknownFields } from '../core/config/field-policy.js';
import { SIDECAR_V8_FLAGS } from '../core/inject/sidecar-node-options.js';
import { GATEWAY_V8_FLAGS } from '../gateway/node-options.js';
import { LOG_LEVELS, logLevel, setLogSettings } from '../core/telemetry/logger.js';
import { versionDetails, versionLine } from './version.js';
import { whenNeededLoaded } from '../core/runtime/when-needed.js';
import { closest } from '../core/config/suggest.js';

const COMMANDS: Record<string, { summary: string; run: (argv: string[]) => Promise<number> }> = {
  gateway: {
    summary: 'run the ingress gateway on a config folder',
    // The gateway's V8 flags before it reads its configuration (why: in the file that has them).
    run: async (argv) => {
      setFlagsFromString(GATEWAY_V8_FLAGS);
      return (await command(import('./gateway.js'))).runGatewayCommand(argv);
    },
  },
  control: { summary: 'run the control plane: config stream and CA for proxies', run: async (argv) => (await command(import('./control.js'))).runControlCommand(argv) },
  sidecar: {
    summary: 'run the proxy beside one workload: mTLS in and out, policies',
    // The sidecar's V8 flags before its modules load: V8's memory reducer takes its delay when it is
    // first armed, which can be while they load (why the flags: in the file that has them).
    run: async (argv) => {
      setFlagsFromString(SIDECAR_V8_FLAGS);
      return (await command(import('./sidecar.js'))).runSidecarCommand(argv);
    },
  },
  validate: { summary: 'check each resource of a config folder (fast); exit 1 on errors', run: async (argv) => (await command(import('./validate.js'))).runValidate(argv) },
  analyze: { summary: 'find mistakes across resources (Istio analyzer codes); exit 1 by severity', run: async (argv) => (await command(import('./analyze.js'))).runAnalyze(argv) },
  routes: { summary: 'print the compiled routing table', run: async (argv) => (await command(import('./routes.js'))).runRoutes(argv) },
  explain: { summary: 'show which server, route and destination a request gets, and why not others', run: async (argv) => (await command(import('./explain.js'))).runExplain(argv) },
  certs: { summary: 'list the certificates the gateway serves, with problems', run: async (argv) => (await command(import('./certs.js'))).runCerts(argv) },
  inject: { summary: 'print a manifest with the sidecar injected, like istioctl kube-inject', run: async (argv) => (await command(import('./inject.js'))).runInjectCommand(argv) },
  wait: { summary: 'wait until the sidecar is ready (the proxy\'s postStart hook when the app is held)', run: async (argv) => (await command(import('./wait.js'))).runWaitCommand(argv) },
  request: { summary: "one HTTP request to the sidecar's local ports (a native sidecar's preStop drain)", run: async (argv) => (await command(import('./request.js'))).runRequestCommand(argv) },
  iptables: { summary: "install the sidecar's traffic capture (the init container's command)", run: async (argv) => (await command(import('./iptables.js'))).runIptablesCommand(argv) },
  demo: { summary: 'run the demo: backends plus a gateway on gateway-config/', run: async (argv) => (await command(import('./demo.js'))).runDemo(argv) },
  dashboard: { summary: 'print (and open) the URL of the live service graph', run: async (argv) => (await command(import('./dashboard.js'))).runDashboard(argv) },
};

/** A command's module, once the modules it loads on demand can be loaded (core/runtime/when-needed.ts). */
async function command<M>(module: Promise<M>): Promise<M> {
  const loaded = await module;
  await whenNeededLoaded();
  return loaded;
}

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    'usage: meshgate <command> [options]',
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    '  version   print the version and build details (meshgate --version: one line)',
    '',
    'options for every command:',
    '  --allow-unknown-fields  an unknown field in the config is a warning, not an error (Istio\'s',
    '                          schema and kubectl apply refuse them; use this for config written',
    '                          for a newer Istio)',
    '  --log-level LEVEL       fatal, error, warn, info (default), debug, trace or silent',
    '  --log-format FORMAT     json or text (default: text on a terminal, JSON otherwise)',
    '',
    "run 'meshgate <command> --help' for a command's options",
  ].join('\n');
}

/**
 * Options every command takes, anywhere on the line, read here once before the command runs:
 * `--allow-unknown-fields`, `--log-level LEVEL`, `--log-format json|text` (also as `--flag=value`).
 */
function takeGlobalFlags(argv: string[]): string[] {
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--allow-unknown-fields') {
      setAllowUnknownFields(true);
      continue;
    }
    const m = /^--(log-level|log-format)(?:=(.*))?$/.exec(a);
    if (!m) {
      rest.push(a);
      continue;
    }
    const value = m[2] ?? argv[++i];
    if (m[1] === 'log-level') {
      if (!value || !(LOG_LEVELS as readonly string[]).includes(value)) throw new UsageError(`--log-level: '${value ?? ''}' is not one of ${LOG_LEVELS.join(', ')}`);
      setLogSettings({ level: value });
    } else {
      if (value !== 'json' && value !== 'text') throw new UsageError(`--log-format: '${value ?? ''}' is not json or text`);
      setLogSettings({ format: value });
    }
  }
  return rest;
}

export async function main(argv: string[]): Promise<number> {
  let args: string[];
  try {
    args = takeGlobalFlags(argv);
  } catch (err) {
    console.error(`meshgate: ${(err as Error).message}`);
    return 2;
  }
  const [command, ...rest] = args;
  if (command === '--version' || command === '-v') {
    console.log(versionLine());
    return 0;
  }
  if (command === 'version') {
    console.log(versionDetails());
    return 0;
  }
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(usage());
    return 0;
  }
  const c = COMMANDS[command];
  if (!c) {
    const near = closest(command, Object.keys(COMMANDS));
    console.error(`meshgate: unknown command '${command}'${near !== undefined ? `; did you mean '${near}'?` : ''}\n\n${usage()}`);
    return 2;
  }
  try {
    return await c.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`meshgate ${command}: ${err.message}`);
      return 2;
    }
    // Whatever else stops a command before it runs (a folder that is not there, a port in use, a
    // file it cannot read) is one line a person can act on; the stack only at --log-level debug.
    const message = err instanceof Error ? err.message : String(err);
    console.error(`meshgate ${command}: ${firstLine(message)}`);
    if (!(err instanceof CommandError) && ['debug', 'trace'].includes(logLevel()) && err instanceof Error) console.error(err.stack);
    return 1;
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

/** The command line is wrong: the message, exit code 2. */
export class UsageError extends Error {}

/** The command cannot do its work (a config folder that is not there): the message, exit code 1. */
export class CommandError extends Error {}
