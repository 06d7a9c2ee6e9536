// DNS capture in the init container's rules, as istio-iptables writes them with --redirect-dns:
// the redirect to 15053 only for the resolv.conf nameservers (or any address with capture-all),
// after the proxy's own traffic has returned, and the conntrack zones of the raw table.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { captureRules, DEFAULT_CAPTURE } from '../src/core/capture/iptables-rules.js';
import { parseResolvConf } from '../src/core/dns/resolv-conf.js';

describe('DNS capture rules', () => {
  it('adds nothing while DNS capture is off', () => {
    const rules = captureRules(DEFAULT_CAPTURE);
    assert.doesNotMatch(rules, /DNS|15053|\* raw/);
    assert.match(rules, /-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN/);
  });

  it('redirects port 53 to the nameservers only, after the proxy returned, and splits conntrack zones', () => {
    const rules = captureRules({ ...DEFAULT_CAPTURE, redirectDns: true, dnsServers: ['10.96.0.10'] });
    const lines = rules.split('\n');
    const at = (line: string): number => {
      const i = lines.indexOf(line);
      assert.ok(i >= 0, `${line} in\n${rules}`);
      return i;
    };
    const jump = at('-A ISTIO_OUTPUT -j ISTIO_OUTPUT_DNS');
    assert.ok(at('-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN') < jump && at('-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN') < jump, 'the proxy returns before DNS is redirected');
    assert.ok(jump < at('-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN'));
    at('-A ISTIO_OUTPUT_DNS -p udp --dport 53 -d 10.96.0.10/32 -j REDIRECT --to-port 15053');
    at('-A ISTIO_OUTPUT_DNS -p tcp --dport 53 -d 10.96.0.10/32 -j REDIRECT --to-ports 15053');
    // The loopback RETURN spares TCP DNS (a resolver on localhost), the proxy's lo redirect too (uid only, as Istio).
    at('-A ISTIO_OUTPUT -o lo -p tcp ! --dport 53 -m owner ! --uid-owner 1337 -j RETURN');
    at('-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp -m multiport ! --dports 53,15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT');
    at('-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT');
    // raw: the proxy's own rules first (the first CT a packet meets sets its zone).
    const raw = lines.indexOf('* raw');
    assert.ok(raw > lines.indexOf('COMMIT'));
    assert.ok(at('-A ISTIO_OUTPUT_DNS -p udp --dport 53 -m owner --uid-owner 1337 -j CT --zone 1') < at('-A ISTIO_OUTPUT_DNS -p udp --dport 53 -d 10.96.0.10/32 -j CT --zone 2'));
    at('-A ISTIO_OUTPUT_DNS -p udp --sport 15053 -m owner --gid-owner 1337 -j CT --zone 2');
    at('-A ISTIO_INBOUND -p udp --sport 53 -s 10.96.0.10/32 -j CT --zone 1');
    assert.equal(lines.filter((l) => l === 'COMMIT').length, 2);
  });

  it('captures any DNS destination with capture-all, and none when no nameserver is known', () => {
    const all = captureRules({ ...DEFAULT_CAPTURE, redirectDns: true, captureAllDns: true });
    assert.match(all, /^-A ISTIO_OUTPUT_DNS -p udp --dport 53 -j REDIRECT --to-port 15053$/m);
    assert.match(all, /^-A ISTIO_INBOUND -p udp --sport 53 -j CT --zone 1$/m);
    assert.equal(captureRules({ ...DEFAULT_CAPTURE, redirectDns: true, dnsServers: [] }), captureRules(DEFAULT_CAPTURE));
  });

  it('reads nameservers and the search list from resolv.conf', () => {
    const conf = parseResolvConf('# pod\nsearch Default.svc.cluster.local svc.cluster.local cluster.local.\nnameserver 10.96.0.10\nnameserver fe80::1%eth0\nnameserver bogus\noptions ndots:5\n');
    assert.deepEqual(conf.nameservers, ['10.96.0.10', 'fe80::1']);
    assert.deepEqual(conf.search, ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local']);
  });
});
