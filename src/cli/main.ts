// `meshgate <command>`: each command only parses its options and calls into a role or the core.
// Every command is imported when it runs, never before: a sidecar then loads only what a sidecar runs
// (no ACME client, no Kubernetes client, no certificate authority), which is most of its memory.

const COMMANDS: Record<string, { summary: string; run: (argv: string[]) => Promise<number> }> = {
  gateway: { summary: 'run the ingress gateway on a config folder', run: async (argv) => (await import('./gateway.js')).runGatewayCommand(argv) },
  control: { summary: 'run the control plane: config stream and CA for proxies', run: async (argv) => (await import('./control.js')).runControlCommand(argv) },
  sidecar: { summary: 'run the proxy beside one workload: mTLS in and out, policies', run: async (argv) => (await import('./sidecar.js')).runSidecarCommand(argv) },
  validate: { summary: 'check a config folder; exit 1 on errors', run: async (argv) => (await import('./validate.js')).runValidate(argv) },
  routes: { summary: 'print the compiled routing table', run: async (argv) => (await import('./routes.js')).runRoutes(argv) },
  explain: { summary: 'show which server, route and destination a request gets, and why not others', run: async (argv) => (await import('./explain.js')).runExplain(argv) },
  certs: { summary: 'list the certificates the gateway serves, with problems', run: async (argv) => (await import('./certs.js')).runCerts(argv) },
  inject: { summary: 'print a manifest with the sidecar injected, like istioctl kube-inject', run: async (argv) => (await import('./inject.js')).runInjectCommand(argv) },
  iptables: { summary: "install the sidecar's traffic capture (the init container's command)", run: async (argv) => (await import('./iptables.js')).runIptablesCommand(argv) },
  demo: { summary: 'run the demo: backends plus a gateway on gateway-config/', run: async (argv) => (await import('./demo.js')).runDemo(argv) },
  dashboard: { summary: 'print (and open) the URL of the live service graph', run: async (argv) => (await import('./dashboard.js')).runDashboard(argv) },
};

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    'usage: meshgate <command> [options]',
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    "run 'meshgate <command> --help' for a command's options",
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
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
