// Runs inside a network namespace where SYNs to `<address>:<port>` are dropped (iptables DROP), for
// test/passthrough-connect-timeout.test.ts: three sidecars under a mesh config with a short
// `connectTimeout` — one the app uses as its HTTP proxy (CONNECT), one capturing (the original
// destination stood in for), one whose app is at the dropping address — each sends a connection
// there. Prints one JSON object with what the app saw, the access-log lines and the TCP metrics.
// Usage: node connect-timeout-pod.js <address> <port> <connectTimeout>. Without them it does nothing,
// as when `node --test dist/test/` loads every file under it.

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSidecar, type RunningSidecar } from '../../src/sidecar/main.js';
import { exchangeCaptured, RecordedDestinations } from './original-destinations.js';
import { sidecarOptions, testAuthority, untilSnapshot } from './mesh.js';
import { completeJsonLines, eventually } from './gateway.js';
import { scrape, samplesOf } from './prometheus-text.js';
import { tunnel } from './tunnel.js';

const args = process.argv.slice(2);

/** Sends `text` to a sidecar's inbound port and half-closes: what came back before the close. */
function exchangeInbound(inboundPort: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(inboundPort, '127.0.0.1');
    let data = '';
    s.once('connect', () => s.end(text));
    s.on('data', (d: Buffer) => (data += d.toString()));
    s.once('close', () => resolve(data));
    s.once('error', reject);
  });
}

async function linesOf(file: string): Promise<Array<Record<string, unknown>>> {
  let lines: Array<Record<string, unknown>> = [];
  await eventually(async () => (lines = completeJsonLines(await readFile(file, 'utf8').catch(() => ''))).length > 0);
  return lines;
}

async function closedWithUf(s: RunningSidecar): Promise<Array<Record<string, string>>> {
  return samplesOf(await scrape(s.metricsPort), 'istio_tcp_connections_closed_total')
    .filter((x) => x.labels['response_flags'] === 'UF')
    .map((x) => ({ destination_service_name: x.labels['destination_service_name']!, reporter: x.labels['reporter']!, value: String(x.value) }));
}

async function run(address: string, port: number, connectTimeout: string): Promise<void> {
  const ca = await testAuthority();
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-connect-timeout-'));
  await writeFile(join(dir, 'mesh.yaml'), `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |\n    connectTimeout: ${connectTimeout}\n`);
  const destinations = new RecordedDestinations();
  const common = { accessLog: '', metricsPort: 0 };
  const proxy = await startSidecar({ ...sidecarOptions(ca, dir, 'curl', 1), ...common, accessLog: join(dir, 'proxy.log') });
  const captured = await startSidecar({ ...sidecarOptions(ca, dir, 'curl', 1), ...common, accessLog: join(dir, 'captured.log'), capture: true, originalDestination: destinations });
  const server = await startSidecar({ ...sidecarOptions(ca, dir, 'db', port), ...common, accessLog: join(dir, 'server.log'), appHost: address });
  const all = [proxy, captured, server];
  await Promise.all(all.map((s) => untilSnapshot(s.holder, (snap) => snap.connectTimeoutMs !== undefined)));

  const [connectAnswer, capturedAnswer, inboundAnswer] = await Promise.all([
    tunnel(proxy.outboundPort, `${address}:${port}`, 'x'),
    exchangeCaptured(captured.outboundPort, destinations, address, port, 'x'),
    exchangeInbound(server.inboundPort, 'x'),
  ]);
  const result = {
    connect: connectAnswer,
    captured: capturedAnswer,
    inbound: inboundAnswer,
    lines: { proxy: await linesOf(join(dir, 'proxy.log')), captured: await linesOf(join(dir, 'captured.log')), server: await linesOf(join(dir, 'server.log')) },
    closedWithUf: { proxy: await closedWithUf(proxy), captured: await closedWithUf(captured), server: await closedWithUf(server) },
  };
  await Promise.all(all.map((s) => s.destroy()));
  await rm(dir, { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (args.length === 3) await run(args[0]!, Number(args[1]), args[2]!);
