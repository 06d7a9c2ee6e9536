// The benchmark's layer attribution of perf samples (bench/perf-layers.ts): a sample goes to OpenSSL
// when OpenSSL is on its stack below Node's own frames, whatever its leaf; to the collector wherever
// a collector frame is; otherwise by its leaf. The ratios to nginx in docs/benchmarks.md rest on it.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { layerOf } from '../bench/perf-layers.js';

const node = (sym: string) => ({ sym, dso: '/usr/bin/node' });

test('malloc called by OpenSSL inside node is OpenSSL; called by node it is libc', () => {
  const libc = { sym: '_int_malloc', dso: '/usr/lib/x86_64-linux-gnu/libc.so.6' };
  assert.equal(layerOf([libc, node('CRYPTO_malloc'), node('tls_construct_new_session_ticket'), node('SSL_read'), node('node::crypto::TLSWrap::ClearOut')], true), 'OpenSSL');
  assert.equal(layerOf([libc, node('node::Buffer::New'), node('node::crypto::SecureContext::TicketKeyCallback'), node('SSL_read')], true), 'libc');
});

test("nginx's OpenSSL is told by its library, and nginx's own code by its binary", () => {
  assert.equal(layerOf([{ sym: 'whatever_internal', dso: '/usr/lib/x86_64-linux-gnu/libcrypto.so.3' }], true), 'OpenSSL');
  assert.equal(layerOf([{ sym: 'ngx_http_process_request_line', dso: '/usr/sbin/nginx' }], true), 'nginx');
});

test('collector frames win, compiler threads are told apart, and JIT frames without a map are JavaScript', () => {
  assert.equal(layerOf([node('v8::internal::Scavenger::ScavengePage'), node('v8::internal::Heap::Scavenge')], false), 'garbage collection');
  assert.equal(layerOf([node('v8::internal::compiler::Typer::Run')], false), 'V8 compiler threads');
  assert.equal(layerOf([{ sym: '[unknown]', dso: '[unknown]' }, node('Builtins_JSEntry')], true), 'JavaScript (JIT)');
  assert.equal(layerOf([{ sym: 'JS:^onconnection node:net:2168:22', dso: '/tmp/perf-1.map' }], true), 'JavaScript (JIT)');
  assert.equal(layerOf([node('Builtins_Call_ReceiverIsAny')], true), 'V8 builtins');
  assert.equal(layerOf([{ sym: 'tcp_sendmsg', dso: '[kernel.kallsyms]' }, node('uv__write')], true), 'kernel');
});
