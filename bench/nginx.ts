// nginx as the HTTPS reference: the distribution's nginx, run as a child process (never as a
// service) with a configuration generated into a temporary folder, terminating TLS with the same
// certificates as meshgate and proxying to the same upstream over kept-alive connections, and on one
// more port in plain HTTP (the plain-HTTP reference row beside Caddy and HAProxy).
// One worker process, so that its figures compare per core with meshgate's single process.

import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findCommand, freePorts, tempDir, track } from './processes.js';
import { BENCH_HOST } from './servers.js';
import { KEY_TYPES, type BenchCerts } from './tls-certs.js';
import type { Target, TlsTarget } from './targets.js';
import { tlsProbe } from './handshakes.js';

/** BENCH_NGINX: the nginx binary to run, or `none` to leave nginx out; default the one on PATH. */
export function findNginx(): string | undefined {
  const chosen = process.env.BENCH_NGINX;
  if (chosen === 'none') return undefined;
  return chosen || findCommand('nginx');
}

// HTTP/1.1 without "Connection: close" is what lets the upstream connections be reused.
const PROXY_TO_UPSTREAM = `location / {
        proxy_pass http://bench_upstream;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
      }`;

/** One `server` per certificate, in the order of `ports`, then a plain-HTTP one on the last port. */
export function nginxConfig(prefix: string, upstreamPort: number, certs: BenchCerts, ports: readonly number[]): string {
  const tlsServers = KEY_TYPES.map((k, i) => `
    server {
      listen 127.0.0.1:${ports[i]} ssl;
      ssl_certificate ${certs.byKey[k].certFile};
      ssl_certificate_key ${certs.byKey[k].keyFile};
      ssl_protocols TLSv1.2 TLSv1.3;
      ${PROXY_TO_UPSTREAM}
    }`);
  const plainServer = `
    server {
      listen 127.0.0.1:${ports[KEY_TYPES.length]};
      ${PROXY_TO_UPSTREAM}
    }`;
  const servers = [...tlsServers, plainServer].join('\n');
  // Every path nginx writes to is in the temporary prefix: the distribution's compiled-in ones
  // (/var/lib/nginx, /var/log/nginx, /run) belong to the system's nginx.
  return `worker_processes 1;
error_log ${join(prefix, 'error.log')} warn;
pid ${join(prefix, 'nginx.pid')};
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${join(prefix, 'tmp', 'body')};
  proxy_temp_path ${join(prefix, 'tmp', 'proxy')};
  fastcgi_temp_path ${join(prefix, 'tmp', 'fastcgi')};
  uwsgi_temp_path ${join(prefix, 'tmp', 'uwsgi')};
  scgi_temp_path ${join(prefix, 'tmp', 'scgi')};
  # The default (1000) would close each kept-alive client connection every few seconds under load
  # and make wrk handshake again; meshgate never closes a connection for its request count.
  keepalive_requests 1000000;
  upstream bench_upstream {
    server 127.0.0.1:${upstreamPort};
    keepalive 32;
  }
${servers}
}
`;
}

export const NGINX_HTTP = 'nginx (worker_processes 1)';

/** nginx in front of the upstream: one HTTPS target per certificate, and one plain-HTTP target. */
export async function startNginx(nginx: string, upstreamPort: number, certs: BenchCerts): Promise<{ https: TlsTarget[]; http: Target }> {
  const prefix = await tempDir('meshgate-bench-nginx-');
  await mkdir(join(prefix, 'tmp'));
  const ports = await freePorts(KEY_TYPES.length + 1);
  const conf = join(prefix, 'nginx.conf');
  await writeFile(conf, nginxConfig(prefix, upstreamPort, certs, ports));
  // -e: even the messages before the configuration is read stay out of /var/log/nginx.
  const args = ['-e', join(prefix, 'error.log'), '-c', conf, '-p', prefix, '-g', 'daemon off;'];
  const child = track(spawn(nginx, args, { stdio: ['ignore', 'ignore', 'pipe'] }), 'nginx');
  await child.until(async () => (await tlsProbe(ports[0]!)) !== undefined, 10_000);
  const stop = () => child.stop();
  const https = KEY_TYPES.map((keyType, i) => ({
    name: 'nginx',
    url: `https://127.0.0.1:${ports[i]}/`,
    host: BENCH_HOST,
    port: ports[i]!,
    keyType,
    pid: child.pid,
    stop,
  }));
  const http: Target = { name: NGINX_HTTP, url: `http://127.0.0.1:${ports[KEY_TYPES.length]}/`, host: BENCH_HOST, pid: child.pid, stop };
  return { https, http };
}
