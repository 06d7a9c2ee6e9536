// The command line's own behaviour: --version and version, a startup failure as one human line
// with exit 1, an unknown flag or command with the nearest one and exit 2, the log format (text on a
// terminal, JSON otherwise, or as --log-format says), and a
// gateway worker other than the first keeping shared events to worker 0; and a Node 20 without
// require() of ES modules running commands as a newer one does.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatTextLine } from '../src/core/telemetry/logger.js';
import { parseMetricsPort } from '../src/cli/options.js';

const BIN = fileURLToPath(new URL('../../bin/meshgate.js', import.meta.url));
const LOGGER = fileURLToPath(new URL('../src/core/telemetry/logger.js', import.meta.url));
const VERSION = (JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string }).version;

function meshgate(...args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
}

const CONFIG = fileURLToPath(new URL('../../gateway-config', import.meta.url));

describe('meshgate command line', () => {
  it('prints the version with --version, and build details with version', () => {
    const short = meshgate('--version');
    assert.equal(short.status, 0);
    assert.equal(short.stdout, `meshgate ${VERSION}\n`);
    const long = meshgate('version');
    assert.match(long.stdout, new RegExp(`^meshgate: +${VERSION.replace(/\./g, '\\.')}$`, 'm'));
    assert.match(long.stdout, /^node: +v\d+/m);
  });

  // Node 20 before 20.19 has no require() of an ES module, which loads validators and the Gateway API
  // translation on demand (core/runtime/when-needed.ts); this flag gives a newer Node the same lack.
  it('validates and analyzes the same where Node cannot require() an ES module', () => {
    for (const command of ['validate', 'analyze']) {
      const usual = meshgate(command, CONFIG);
      const older = spawnSync(process.execPath, ['--no-experimental-require-module', BIN, command, CONFIG], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(older.stderr, usual.stderr, command);
      assert.equal(older.stdout, usual.stdout, command);
      assert.equal(older.status, usual.status, command);
      assert.equal(usual.status, 0, `${command}: ${usual.stdout}${usual.stderr}`);
    }
  });

  for (const args of [['demo', '--config', '/nope'], ['analyze', '/nope'], ['routes', '--config', '/nope'], ['certs', '--config', '/nope']]) {
    it(`meshgate ${args.join(' ')}: one line on stderr, exit 1, no stack`, () => {
      const r = meshgate(...args);
      assert.equal(r.status, 1);
      assert.equal(r.stderr, `meshgate ${args[0]}: config folder /nope does not exist\n`);
    });
  }

  // No KUBECONFIG, no ~/.kube/config, not in a pod: said at once, before any worker starts, rather
  // than after the API's start timeout (the client would fall back to plain http://localhost:8080).
  for (const command of ['gateway', 'control', 'analyze']) {
    it(`meshgate ${command} --config-source kubernetes without any kubeconfig: one line, exit 1`, () => {
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'KUBECONFIG' && !k.startsWith('KUBERNETES_')));
      const r = spawnSync(process.execPath, [BIN, command, '--config-source', 'kubernetes'], { encoding: 'utf8', timeout: 60_000, env: { ...env, HOME: '/nonexistent' } });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^meshgate ${command}: no Kubernetes configuration found: set KUBECONFIG or pass --kubeconfig FILE, [^\n]+\n$`));
      assert.equal(r.stdout, '');
    });
  }

  // A file a flag names and the command reads: the flag, the file and why, before anything starts.
  const READABLE = fileURLToPath(new URL('../../package.json', import.meta.url));
  for (const [args, line] of [
    [['gateway', '--config', CONFIG, '--acme-ca', '/nope'], '--acme-ca: cannot read /nope: ENOENT'],
    [['gateway', '--control', 'https://127.0.0.1:1', '--token', READABLE, '--root-cert', '/nope'], '--root-cert: cannot read /nope: ENOENT'],
    [['sidecar', '--control', 'https://127.0.0.1:1', '--token', '/nope', '--root-cert', READABLE, '--namespace', 'd', '--workload', 'w', '--service-account', 's', '--app-port', '8080'], '--token: cannot read /nope: ENOENT'],
    [['inject', '-f', '/nope'], '-f: cannot read /nope: ENOENT'],
  ] as const) {
    it(`meshgate ${args[0]} ${line.split(':')[0]} naming no file: one line, exit 1`, () => {
      const r = meshgate(...args);
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.stderr, `meshgate ${args[0]}: ${line}\n`);
    });
  }

  // A flag from another command (demo's --port) or misspelt: the nearest flag, not Node's advice on
  // positionals starting with '-'; exit 2 before anything starts.
  for (const [args, line] of [
    [['gateway', '--config', CONFIG, '--port', '80=8080'], 'unknown option --port; did you mean --ports? (--help lists the options)'],
    [['validate', '--confg', CONFIG], 'unknown option --confg; did you mean --config? (--help lists the options)'],
    [['analyze', '--bogus', CONFIG], 'unknown option --bogus (--help lists the options)'],
  ] as const) {
    it(`meshgate ${args[0]} ${args.find((a) => a.startsWith('--') && a !== '--config')}: the nearest flag, exit 2`, () => {
      const r = meshgate(...args);
      assert.equal(r.status, 2);
      assert.equal(r.stderr, `meshgate ${args[0]}: ${line}\n`);
    });
  }

  it('an unknown command names the nearest one, exit 2', () => {
    const r = meshgate('analyse', CONFIG);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^meshgate: unknown command 'analyse'; did you mean 'analyze'\?\n\nusage: meshgate/);
  });

  it('refuses an unknown --log-format or --log-level with exit 2', () => {
    assert.equal(meshgate('--log-format', 'xml', 'version').status, 2);
    assert.equal(meshgate('--log-level', 'loud', 'version').status, 2);
  });

  it('prints text log lines: time, level, name, message, then fields', () => {
    const line = formatTextLine(JSON.stringify({ level: 40, time: Date.UTC(2026, 0, 1, 12, 0, 0, 5), pid: 1, hostname: 'h', name: 'meshgate-gateway', worker: 0, msg: 'configuration applied', version: 3, listeners: [8080] }));
    assert.equal(line, '12:00:00.005 WARN  meshgate-gateway: configuration applied worker=0 version=3 listeners=[8080]');
    // A config problem's message already holds its file, line, resource and field: not said twice.
    const problem = formatTextLine(JSON.stringify({ level: 50, time: Date.UTC(2026, 0, 1, 12, 0, 0, 5), name: 'meshgate-gateway', problem: { severity: 'error', file: 'a.yaml', line: 3 }, msg: 'a.yaml:3 VirtualService default/x spec.gatways: unknown field' }));
    assert.equal(problem, '12:00:00.005 ERROR meshgate-gateway: a.yaml:3 VirtualService default/x spec.gatways: unknown field');
  });

  function logWith(env: Record<string, string>, script: string) {
    return spawnSync(process.execPath, ['--input-type=module', '-e', `import { createLogger } from ${JSON.stringify(LOGGER)};\n${script}`], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
  }

  it('logs JSON when stderr is not a terminal, text with --log-format text, one whole line per event', () => {
    const json = logWith({}, "createLogger('t').info({ a: 1 }, 'hello')");
    assert.equal(JSON.parse(json.stderr).msg, 'hello');
    const text = logWith({ MESHGATE_LOG_FORMAT: 'text' }, "createLogger('t').info({ a: 1 }, 'hello')");
    assert.match(text.stderr, /^\d\d:\d\d:\d\d\.\d{3} INFO  t: hello a=1\n$/);
  });

  it('a gateway worker other than 0 leaves the events all workers share to worker 0, and says its own', () => {
    const r = logWith({ MESHGATE_LOG_FORMAT: 'json' }, "const l = createLogger('gw', { quietWorker: true }); l.info({ version: 1 }, 'configuration applied'); l.warn({ problem: {} }, 'a config warning'); l.info('gateway serving'); l.info({ seconds: 5 }, 'draining'); l.error('port in use');");
    const lines = r.stderr.trim().split('\n').map((l) => JSON.parse(l).msg);
    assert.deepEqual(lines, ['gateway serving', 'draining', 'port in use']);
  });
});

describe('--metrics-port', () => {
  it('0 is off, any is a port the OS chooses (0 to the listener), N is N; anything else is a usage error', () => {
    assert.equal(parseMetricsPort('0', 15090, '--metrics-port'), undefined);
    assert.equal(parseMetricsPort('any', 15090, '--metrics-port'), 0);
    assert.equal(parseMetricsPort('9102', 15090, '--metrics-port'), 9102);
    assert.equal(parseMetricsPort(undefined, 15090, '--metrics-port'), 15090);
    assert.equal(parseMetricsPort(undefined, 0, '--metrics-port'), undefined);
    assert.throws(() => parseMetricsPort('auto', 15090, '--metrics-port'), /--metrics-port: 'auto' is not a port/);
  });
});
