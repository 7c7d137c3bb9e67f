// A full GC while nothing is being built leaves the optimized code of the hot paths in place
// (lib/shape-keeper.ts): V8 would otherwise drop the hidden classes of their short-lived objects and
// deoptimize every function specialized to them, so the next push ran in the interpreter. Checked in a
// child process with V8's own optimization status (natives syntax), on the pinned Node.
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { repoRoot } from '../helpers/peer-paths.js';

// Each path: a driver that runs it, and the functions whose optimized code must survive. V8 is made to
// optimize them, every object the drivers made is dropped, full GCs run, and the script reports which paths
// are still optimized.
const SCRIPT = `
import { createHash } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { encodeDeltaBody, Response, responseBytes } from './control-plane/xds/response.ts';
import { encodeMessage, packAny } from './control-plane/envoy/protos.ts';
import { ClusterSchema } from './control-plane/envoy/gen/envoy/config/cluster/v3/cluster_pb.ts';
import { DiscoveryRequestSchema } from './control-plane/envoy/gen/envoy/service/discovery/v3/discovery_pb.ts';
import { decodeSotwRequest } from './control-plane/xds/sotw-request.ts';
import './control-plane/xds/resource-cache.ts';
const status = new Function('f', 'return %GetOptimizationStatus(f)');
const prepare = new Function('f', '%PrepareFunctionForOptimization(f)');
const optimize = new Function('f', '%OptimizeFunctionOnNextCall(f)');
const OPTIMIZED = 16; // V8's OptimizationStatus::kOptimized
// The drivers' inputs are made once and kept, as the control plane keeps its config: only what the server
// makes per response or per request is short-lived. An ACK as a proxy sends it.
const ack = (schema, i) =>
  Buffer.from(encodeMessage(create(schema, { typeUrl: 'type.googleapis.com/x', responseNonce: 'n' + i })));
const sotwAcks = Array.from({ length: 300 }, (_, i) => ack(DiscoveryRequestSchema, i));
const any = encodeMessage(packAny(create(ClusterSchema, { name: 'c' })));
const response = (i) => {
  const resources = [{ name: 'c' + (i % 7), version: 'v' + i, any }];
  const body = encodeDeltaBody('sv' + i, 'type.googleapis.com/x', resources, [], 'cp');
  return responseBytes(new Response(body, 'n' + i)).byteLength;
};
const hash = (i) => createHash('sha256').update('x' + i).digest('base64url').length;
const sotwRequest = (i) => decodeSotwRequest(sotwAcks[i]).responseNonce.length;
const paths = {
  response: [response, [response]],
  hash: [hash, [hash]],
  sotwRequest: [sotwRequest, [sotwRequest]],
};
const optimized = (fns) => fns.every((f) => (status(f) & OPTIMIZED) !== 0);
const before = {};
// Until its feedback has settled, optimized code may still deoptimize on a case it had not seen (that is
// not what this checks): optimize again until the code survives another round of calls.
for (const [name, [drive, fns]] of Object.entries(paths)) {
  for (let attempt = 0; attempt < 10 && !before[name]; attempt++) {
    fns.forEach(prepare);
    for (let i = 0; i < 300; i++) drive(i);
    fns.forEach(optimize);
    for (let i = 0; i < 300; i++) drive(i);
    before[name] = optimized(fns);
  }
}
// V8 keeps a dead map through two full GCs (--retain-maps-for-n-gc): a quiet process runs more than that.
for (let i = 0; i < 4; i++) globalThis.gc();
const after = {};
for (const [name, [, fns]] of Object.entries(paths)) after[name] = optimized(fns);
process.stdout.write(JSON.stringify({ before, after }));
`;

test('a full GC with nothing in flight keeps the hot paths optimized', async (t) => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--allow-natives-syntax', '--expose-gc', '--import', 'tsx', '--input-type=module', '-e', SCRIPT],
    { cwd: repoRoot, env: { ...process.env, NODE_OPTIONS: '' } },
  );
  const { before, after } = JSON.parse(stdout) as Record<'before' | 'after', Record<string, boolean>>;
  const all = { response: true, hash: true, sotwRequest: true };
  t.deepEqual(before, all, 'V8 optimized every path');
  t.deepEqual(after, all, 'false: the full GC deoptimized that path (a hidden class it depends on died)');
});
