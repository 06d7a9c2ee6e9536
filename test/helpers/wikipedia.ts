// Wikipedia for the egress tasks in network namespaces (test/helpers/netns.ts): one server for every
// language, behind one certificate for *.wikipedia.org from a stand-in for the public roots, and the
// pages the tasks fetch, with their titles. Scripts to run with `node -e` inside a lab host.

import { issueCertificate } from '../../src/core/tls/issue-certificate.js';
import { newRoot } from './mesh-tls.js';

/** `host/path` → the `<title>` the task greps out of the page. */
export const TITLES: Readonly<Record<string, string>> = {
  'en.wikipedia.org/wiki/Main_Page': '<title>Wikipedia, the free encyclopedia</title>',
  'de.wikipedia.org/wiki/Wikipedia:Hauptseite': '<title>Wikipedia – Die freie Enzyklopädie</title>',
};

export interface Wikipedia {
  /** The stand-in public root: the app's CA (env CA of `fetchTitle`). */
  readonly caPem: string;
  /** Environment for `SERVER`: the certificate and key. */
  readonly serverEnv: Record<string, string>;
}

export function wikipediaCertificates(): Wikipedia {
  const root = newRoot('public roots stand-in');
  const cert = issueCertificate({ subjectCN: '*.wikipedia.org', dnsNames: ['*.wikipedia.org', 'wikipedia.org'], issuer: root, days: 1, keyType: 'ec' });
  return { caPem: root.certPem, serverEnv: { CERT: cert.certPem, KEY: cert.keyPem } };
}

/** The server, on 443 at `address`: each page in TITLES, 404 for anything else. */
export const wikipediaServer = (address: string): string =>
  `const titles = ${JSON.stringify(TITLES)}; require('node:https').createServer({ cert: process.env.CERT, key: process.env.KEY }, (req, res) => { const t = titles[req.headers.host + req.url]; res.writeHead(t ? 200 : 404, { 'content-type': 'text/html' }).end('<html><head>' + (t ?? '<title>Not Found</title>') + '</head></html>'); }).listen(443, '${address}');`;

/**
 * `curl -s https://<page> | grep -o "<title>.*</title>"`, as a script: to `address`:443 (what DNS
 * would answer), or with `HTTPS_PROXY=<proxy>` through a CONNECT tunnel. Prints the title, `no
 * title`, or `failed: <why>`. The CA comes from env CA.
 */
export function fetchTitle(page: string, address: string, proxy?: { readonly address: string; readonly port: number }): string {
  const [host, ...path] = page.split('/');
  const get = `(s) => { s.write('GET /${path.join('/')} HTTP/1.1\\r\\nHost: ${host}\\r\\nConnection: close\\r\\n\\r\\n'); let b = ''; s.on('data', (d) => (b += d)); s.on('close', () => console.log((/<title>.*<\\/title>/.exec(b) ?? ['no title'])[0])); }`;
  const fail = `(e) => console.log('failed: ' + (e.code ?? e.message))`;
  if (!proxy) return `const get = ${get}; const s = require('node:tls').connect({ host: '${address}', port: 443, servername: '${host}', ca: process.env.CA }, () => get(s)); s.on('error', ${fail});`;
  return `const get = ${get}; const p = require('node:net').connect(${proxy.port}, '${proxy.address}', () => p.write('CONNECT ${host}:443 HTTP/1.1\\r\\nHost: ${host}:443\\r\\n\\r\\n')); p.on('error', ${fail}); let head = ''; const onHead = (d) => { head += d; if (!head.includes('\\r\\n\\r\\n')) return; p.off('data', onHead); if (!/^HTTP\\/1\\.[01] 200/.test(head)) return console.log('failed: ' + head.split('\\r\\n')[0]); const s = require('node:tls').connect({ socket: p, servername: '${host}', ca: process.env.CA }, () => get(s)); s.on('error', ${fail}); }; p.on('data', onHead); p.on('close', () => { if (!head) console.log('failed: closed'); });`;
}
