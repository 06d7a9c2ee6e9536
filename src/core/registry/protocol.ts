// Which protocol a port speaks, from a Kubernetes port name (`http-web`, `grpc`), its appProtocol, or a
// ServiceEntry's `protocol` field, named the way Istio names protocols.

/** Protocol names Istio recognises (case-insensitive), in their canonical upper-case form. */
const KNOWN: Readonly<Record<string, string>> = {
  http: 'HTTP',
  http2: 'HTTP2',
  https: 'HTTPS',
  grpc: 'GRPC',
  'grpc-web': 'GRPC-WEB',
  tcp: 'TCP',
  tls: 'TLS',
  mongo: 'MONGO',
  mysql: 'MYSQL',
  redis: 'REDIS',
  udp: 'UDP',
  http_proxy: 'HTTP_PROXY',
};

/** A protocol name as written (`HTTP`, `grpc-web`) → its canonical form, or UNKNOWN. */
export function parseProtocol(text: string | undefined): string {
  if (!text) return 'UNKNOWN';
  return KNOWN[text.toLowerCase()] ?? 'UNKNOWN';
}

/**
 * A Kubernetes Service port's protocol. appProtocol wins over the name (with the three
 * `kubernetes.io/` standard values); a name is read up to its first `-`, except `grpc-web`, which
 * itself contains one. Anything unrecognised is UNKNOWN, which Istio sniffs and the gateway treats as HTTP.
 */
export function kubePortProtocol(name: string | undefined, appProtocol: string | undefined, transport: string | undefined): string {
  const l4 = (transport ?? 'TCP').toUpperCase();
  if (l4 === 'UDP') return 'UDP';
  if (l4 === 'SCTP') return 'UNSUPPORTED';
  let text = name ?? '';
  if (appProtocol) {
    switch (appProtocol) {
      case 'kubernetes.io/h2c':
        return 'HTTP2';
      case 'kubernetes.io/ws':
        return 'HTTP';
      case 'kubernetes.io/wss':
        return 'HTTPS';
    }
    text = appProtocol;
  }
  if (text.toLowerCase().startsWith('grpc-web')) return 'GRPC-WEB';
  const dash = text.indexOf('-');
  return parseProtocol(dash >= 0 ? text.slice(0, dash) : text);
}

/** Protocols a gateway can route as HTTP; UNKNOWN counts, since Istio would sniff it. */
export function isHttpCapable(protocol: string): boolean {
  return protocol === 'HTTP' || protocol === 'HTTP2' || protocol === 'GRPC' || protocol === 'GRPC-WEB' || protocol === 'HTTP_PROXY' || protocol === 'UNKNOWN';
}

/**
 * Ports Istio assumes to carry TCP when their protocol is not declared: they commonly carry
 * server-first protocols (SMTP, DNS, MySQL, MongoDB), which sniffing would stall.
 */
export const SERVER_FIRST_PORTS: ReadonlySet<number> = new Set([25, 53, 3306, 27017]);

/**
 * Whether a connection to a port of this protocol is opaque TCP from its first byte, so a proxy
 * must not wait for the client to speak: declared TCP, TLS, HTTPS, MONGO, MYSQL, REDIS, and an
 * undeclared port that is one of SERVER_FIRST_PORTS. Only undeclared ports are sniffed.
 */
export function isOpaqueTcp(protocol: string, port: number): boolean {
  if (protocol === 'UNKNOWN') return SERVER_FIRST_PORTS.has(port);
  return !isHttpCapable(protocol) && protocol !== 'UDP' && protocol !== 'UNSUPPORTED';
}
