// The admin port builds its routes on the first request: when that fails, the request is answered
// through the one reply module (500, the reason, the endpoint failure's headers), and the next
// request tries to build them again.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { createAdminPort } from '../src/core/admin/admin-port.js';

describe('admin port whose routes fail to load', () => {
  it('answers 500 with the reason, and tries again on the next request', async () => {
    let builds = 0;
    const admin = createAdminPort(() => {
      builds++;
      return Promise.reject(new Error('no routes today'));
    });
    admin.server.listen(0, '127.0.0.1');
    await new Promise((r) => admin.server.once('listening', r));
    try {
      const port = (admin.server.address() as AddressInfo).port;
      for (const attempt of [1, 2]) {
        const r = await request(`http://127.0.0.1:${port}/routes`);
        assert.equal(r.statusCode, 500);
        assert.equal(r.headers['content-type'], 'text/plain');
        assert.equal(await r.body.text(), 'admin routes failed to load: no routes today\n');
        assert.equal(builds, attempt);
      }
    } finally {
      await admin.close();
    }
  });
});
