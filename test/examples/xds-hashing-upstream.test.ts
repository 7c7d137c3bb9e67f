// What examples/kubernetes/apps/mesh.ts prepareMesh works around, shown on grpc-js-xds itself (1.14.1):
// before its hashing (xxhash, WebAssembly) has loaded, every call of loadXxhashApi starts a load of its
// own, and the xDS resolver awaits one per update (build/src/resolver-xds.js handleXdsConfig), so two
// updates in flight can resume in either order. When this test fails, grpc-js-xds shares one load between
// concurrent callers, and prepareMesh is no longer needed. Its own file: a fresh worker, nothing loaded.
import test from 'ava';
import { createRequire } from 'node:module';
import type * as XxhashModule from '@grpc/grpc-js-xds/build/src/xxhash.js';

/** The module as grpc-js-xds's own code sees it (CommonJS exports: `xxhashApi` is live there, not in an ESM import). */
const xxhash = createRequire(import.meta.url)('@grpc/grpc-js-xds/build/src/xxhash.js') as typeof XxhashModule;

test('concurrent first calls of loadXxhashApi load the hashing once each, not once in all', async (t) => {
  t.is(xxhash.xxhashApi, null);
  const [first, second] = await Promise.all([xxhash.loadXxhashApi(), xxhash.loadXxhashApi()]);
  t.not(first, second, 'two separate loads: their completion order is not the call order');
});
