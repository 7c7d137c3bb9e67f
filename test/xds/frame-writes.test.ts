// Large responses go to the HTTP/2 stream as chunks, the cached bytes by reference (frame-writes.ts): the
// chunks make exactly the gRPC frame, large pieces are the cached arrays themselves, and through real
// grpc-js the install is in effect, shared whole-set bodies are sent without a copy per stream, and every
// client decodes the full response. (test/xds/wire-bytes.test.ts compares the received bytes field by
// field on this path; test/xds/backpressure.test.ts shows the write callbacks still count the bytes.)
import test from 'ava';
import { TypeUrl } from '../../control-plane/envoy/protos.js';
import { frameBytesReferenced, frameChunks, installFrameWrites } from '../../control-plane/xds/frame-writes.js';
import { Response, responseBytes } from '../../control-plane/xds/response.js';
import { deltaNamesOf, testNode } from '../helpers/ads-client.js';
import { adsEnv } from '../helpers/ads-env.js';
import { edsCluster, type JsonResource } from '../helpers/control-plane.js';
import { prng } from '../helpers/prng.js';

const concat = (chunks: readonly Uint8Array[]): Buffer => Buffer.concat(chunks);

test('the chunks of a frame are its prefix, body and nonce; large pieces are the cached arrays, small runs copied together', (t) => {
  const random = prng(2024);
  for (let round = 0; round < 300; round++) {
    const referenceMin = 1 + Math.floor(random() * 64);
    const pieces = Array.from({ length: Math.floor(random() * 8) }, () =>
      Uint8Array.from({ length: Math.floor(random() * 2 * referenceMin) }, () => Math.floor(random() * 256)),
    );
    const nonce = random() < 0.8 ? `n${round}` : undefined;
    const response = new Response(pieces, nonce);
    const chunks = frameChunks(response, referenceMin);

    const body = responseBytes(response);
    const prefix = Buffer.from([0, 0, 0, 0, 0]);
    prefix.writeUInt32BE(body.byteLength, 1);
    t.deepEqual(concat(chunks), Buffer.concat([prefix, body]), `round ${round}: the whole gRPC frame, in order`);
    const large: Uint8Array[] = pieces.filter((p) => p.byteLength >= referenceMin);
    for (const piece of large) t.true(chunks.includes(piece), `round ${round}: a large piece is referenced`);
    const copied = chunks.filter((c) => !large.includes(c));
    t.true(
      copied.length <= large.length + 1,
      `round ${round}: small pieces between two large ones are one chunk (${copied.length} copied, ${large.length} large)`,
    );
  }
});

/** `count` clusters with long names: a whole CDS body of about 100 bytes per cluster. */
function clusters(count: number): JsonResource[] {
  return Array.from({ length: count }, (_, i) =>
    edsCluster(`outbound|8080||service-${String(i).padStart(5, '0')}.namespace-${i % 10}.svc.cluster.local`),
  );
}

test('through grpc-js, a shared whole-set body goes to every stream by reference and arrives whole', async (t) => {
  t.true(installFrameWrites(), 'the pinned grpc-js has the members frame writes replace');
  const config = clusters(2_000);
  await using env = await adsEnv(config, { envoyValidation: false });
  const want = config.map((c) => c.name!).sort();

  const before = frameBytesReferenced();
  const streams = [1, 2, 3].map((i) => {
    const s = env.client.delta();
    s.send({ node: testNode(`p${i}.default`), typeUrl: TypeUrl.Cluster });
    return s;
  });
  for (const s of streams) {
    const r = await s.next();
    t.deepEqual(deltaNamesOf(r).sort(), want, 'every cluster of the set, decoded by grpc-js');
  }
  const referenced = frameBytesReferenced() - before;
  t.true(referenced > 3 * 150_000, `three streams were sent ${referenced} bytes by reference`);
});
