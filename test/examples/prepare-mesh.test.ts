// The example apps load grpc-js-xds's hashing before they create a channel (examples/kubernetes/apps/mesh.ts
// prepareMesh): grpc-js-xds 1.14.1 can apply a channel's first two xDS updates out of order while it is
// still loading (test/examples/xds-hashing-upstream.test.ts shows why). Its own file: ava runs each file in
// a fresh worker, so nothing has loaded the hashing before.
import test from 'ava';
import { createRequire } from 'node:module';
import type * as XxhashModule from '@grpc/grpc-js-xds/build/src/xxhash.js';
import { prepareMesh } from '../../examples/kubernetes/apps/mesh.js';

/** The module as grpc-js-xds's own code sees it (CommonJS exports: `xxhashApi` is live there, not in an ESM import). */
const xxhash = createRequire(import.meta.url)('@grpc/grpc-js-xds/build/src/xxhash.js') as typeof XxhashModule;

test.serial('plain mode loads nothing of grpc-js-xds', async (t) => {
  await prepareMesh('plain');
  t.is(xxhash.xxhashApi, null);
});

test.serial('xds mode: once prepareMesh resolves, the hashing every resolver update awaits is loaded', async (t) => {
  await prepareMesh('xds');
  t.not(xxhash.xxhashApi, null);
  const api = await xxhash.loadXxhashApi();
  t.true(api === xxhash.xxhashApi, 'later calls get the loaded API, in the order they were made');
});
