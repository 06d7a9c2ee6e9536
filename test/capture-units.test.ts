// The pieces of capture that need no namespace: reading an original destination out of conntrack
// lines as the kernel prints them, and the probers handed to the sidecar by injection.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { findOriginalDestination, parseConntrackLine } from '../src/core/capture/original-destination.js';
import { parseAppProbers } from '../src/core/inject/app-probes.js';

// An app (10.77.0.3:40112) dialled a Service IP; REDIRECT sent it to the sidecar's 15001.
const OUTBOUND = 'ipv4     2 tcp      6 431999 ESTABLISHED src=10.77.0.3 dst=10.77.1.10 sport=40112 dport=8080 src=127.0.0.1 dst=10.77.0.3 sport=15001 dport=40112 [ASSURED] mark=0 zone=0 use=2';
// A peer (10.77.0.5:51000) dialled the app's port 9090; PREROUTING sent it to 15006.
const INBOUND = 'ipv4     2 tcp      6 117 SYN_RECV src=10.77.0.5 dst=10.77.0.4 sport=51000 dport=9090 src=10.77.0.4 dst=10.77.0.5 sport=15006 dport=51000 mark=0 zone=0 use=2';
const UDP = 'ipv4     2 udp      17 29 src=10.77.0.3 dst=10.77.0.9 sport=5353 dport=53 [UNREPLIED] src=10.77.0.9 dst=10.77.0.3 sport=53 dport=5353 mark=0 zone=0 use=2';
const TABLE = [UDP, OUTBOUND, INBOUND, ''].join('\n');

describe('original destination from conntrack', () => {
  it('parses both tuples of a TCP line and ignores other protocols', () => {
    assert.deepEqual(parseConntrackLine(OUTBOUND)?.original, { src: '10.77.0.3', dst: '10.77.1.10', sport: 40112, dport: 8080 });
    assert.equal(parseConntrackLine(UDP), undefined);
    assert.equal(parseConntrackLine('garbage'), undefined);
  });
  it('finds outbound and inbound connections by the reply tuple', () => {
    assert.deepEqual(findOriginalDestination(TABLE, { address: '10.77.0.3', port: 40112 }, 15001), { address: '10.77.1.10', port: 8080 });
    assert.deepEqual(findOriginalDestination(TABLE, { address: '::ffff:10.77.0.5', port: 51000 }, 15006), { address: '10.77.0.4', port: 9090 });
  });
  it('finds nothing for a connection that was not redirected to that port', () => {
    assert.equal(findOriginalDestination(TABLE, { address: '10.77.0.3', port: 40112 }, 15006), undefined);
    assert.equal(findOriginalDestination(TABLE, { address: '10.77.0.3', port: 1 }, 15001), undefined);
  });
});

describe('ISTIO_KUBE_APP_PROBERS', () => {
  it('keeps well-formed probers and drops the rest', () => {
    const r = parseAppProbers(JSON.stringify({ '/app-health/app/readyz': { httpGet: { path: '/ready', port: 8080 } }, '/elsewhere': { httpGet: { port: 1 } }, '/app-health/x/livez': { httpGet: { port: 'http' } } }));
    assert.deepEqual(Object.keys(r.probers), ['/app-health/app/readyz']);
    assert.match(parseAppProbers('{').problem ?? '', /not JSON/);
    assert.deepEqual(parseAppProbers(undefined).probers, {});
  });
});
