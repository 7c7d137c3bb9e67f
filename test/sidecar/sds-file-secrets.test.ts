// Certificate files a proxy names to the agent's SDS (`file-cert:<certificate>~<key>`, `file-root:<ca>`;
// sidecar/file-secrets.ts), through a real gRPC client on its Unix socket: read when first asked for, sent
// again when a file is rewritten, not served while a file is missing or the key does not belong to the
// certificate, and the last good files kept meanwhile.
import anyTest, { type TestFn } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { SecretSchema } from '../../control-plane/envoy/gen/envoy/extensions/transport_sockets/tls/v3/secret_pb.js';
import type { DeltaDiscoveryResponse } from '../../control-plane/envoy/gen/envoy/service/discovery/v3/discovery_pb.js';
import { TypeUrl } from '../../control-plane/envoy/protos.js';
import { fileCertificateSecretName, fileRootSecretName } from '../../api/names.js';
import { fileSecret } from '../../sidecar/secret-generator.js';
import { anyBytes, assertEnvoyValid } from '../helpers/envoy-validate.js';
import { waitFor } from '../helpers/wait.js';
import { inline, sdsDelta, secrets, startSds, stopSds, type SdsFixture } from './helpers.js';

type Ctx = SdsFixture;
const test = anyTest.serial as TestFn<Ctx>;

const node = { id: 'cart-0.shop', metadata: { PROXY_TYPE: 'envoy' } };

test.before(async (t) => {
  t.context = await startSds('trellis-sds-files-', { filePollMs: 20 });
  t.context.server.update(t.context.certs[0]!);
});

test.after.always((t) => stopSds(t.context));

/** Replaces `file` as a writer that cares does: a temporary file renamed over it. */
function replace(file: string, content: string): void {
  fs.writeFileSync(`${file}.tmp`, content);
  fs.renameSync(`${file}.tmp`, file);
}

/** Reads delta responses until one carries `name`; returns that Secret and the response. */
async function nextWith(stream: ReturnType<typeof sdsDelta>, name: string, what: string) {
  for (;;) {
    const response: DeltaDiscoveryResponse = await stream.next(what, 10_000);
    stream.send({ typeUrl: TypeUrl.Secret, responseNonce: response.nonce });
    const secret = secrets(response).get(name);
    if (secret) return { secret, response };
  }
}

test('a certificate and a CA from files: served when first asked for, and again when rewritten', async (t) => {
  const { dir, client, certs } = t.context;
  const files = { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem'), ca: path.join(dir, 'ca.pem') };
  replace(files.cert, certs[1]!.certChainPem);
  replace(files.key, certs[1]!.privateKeyPem);
  replace(files.ca, certs[1]!.trustBundlePem);
  const certName = fileCertificateSecretName(files.cert, files.key);
  const rootName = fileRootSecretName(files.ca);
  const s = sdsDelta(client);
  t.teardown(() => s.close());
  s.send({ node, typeUrl: TypeUrl.Secret, resourceNamesSubscribe: [certName, rootName] });

  const first = await nextWith(s, certName, 'the file certificate');
  t.is(first.secret.type.case, 'tlsCertificate');
  const tls = first.secret.type.case === 'tlsCertificate' ? first.secret.type.value : undefined;
  t.is(inline(tls?.certificateChain), certs[1]!.certChainPem);
  t.is(inline(tls?.privateKey), certs[1]!.privateKeyPem);
  const root = secrets(first.response).get(rootName) ?? (await nextWith(s, rootName, 'the file CA')).secret;
  t.is(root.type.case, 'validationContext');
  t.is(
    inline(root.type.case === 'validationContext' ? root.type.value.trustedCa : undefined),
    certs[1]!.trustBundlePem,
  );
  const version = first.response.resources.find((r) => r.name === certName)!.version;

  // A rotation: the certificate first, then its key. In between the two do not belong together and nothing
  // is sent; then the new pair.
  replace(files.cert, certs[2]!.certChainPem);
  replace(files.key, certs[2]!.privateKeyPem);
  const rotated = await nextWith(s, certName, 'the rotated certificate');
  const tls2 = rotated.secret.type.case === 'tlsCertificate' ? rotated.secret.type.value : undefined;
  t.is(inline(tls2?.certificateChain), certs[2]!.certChainPem);
  t.is(inline(tls2?.privateKey), certs[2]!.privateKeyPem);
  t.not(rotated.response.resources.find((r) => r.name === certName)!.version, version);
  t.false(
    rotated.response.resources.some((r) => r.name === rootName),
    'the unchanged CA is not sent again',
  );
});

test('a missing file is not served and is logged; once it is there, it is sent', async (t) => {
  const { dir, client, certs, lines } = t.context;
  const ca = path.join(dir, 'later-ca.pem');
  const name = fileRootSecretName(ca);
  const s = sdsDelta(client);
  t.teardown(() => s.close());
  s.send({ node, typeUrl: TypeUrl.Secret, resourceNamesSubscribe: [name] });
  await waitFor('the missing file to be reported', () =>
    lines.some((l) => l.msg === 'sds: certificate files cannot be served' && l.secret === name),
  );
  const problem = lines.find((l) => l.msg === 'sds: certificate files cannot be served' && l.secret === name)!;
  t.regex(String(problem.problem), /cannot read .*later-ca\.pem: ENOENT/);
  replace(ca, certs[0]!.trustBundlePem);
  const { secret } = await nextWith(s, name, 'the CA once written');
  t.is(
    inline(secret.type.case === 'validationContext' ? secret.type.value.trustedCa : undefined),
    certs[0]!.trustBundlePem,
  );
});

test('a key that does not belong to the certificate is not served; the last good pair stays', async (t) => {
  const { dir, client, certs, lines, server } = t.context;
  const cert = path.join(dir, 'pair-cert.pem');
  const key = path.join(dir, 'pair-key.pem');
  replace(cert, certs[1]!.certChainPem);
  replace(key, certs[2]!.privateKeyPem);
  const name = fileCertificateSecretName(cert, key);
  const s = sdsDelta(client);
  t.teardown(() => s.close());
  s.send({ node, typeUrl: TypeUrl.Secret, resourceNamesSubscribe: [name] });
  await waitFor('the mismatch to be reported', () =>
    lines.some((l) => l.secret === name && /does not belong to the certificate/.test(String(l.problem))),
  );
  t.false(server.status().some((x) => x.sent !== '' && x.subscribed.includes(name) && x.responses > 1));
  replace(key, certs[1]!.privateKeyPem);
  const { secret } = await nextWith(s, name, 'the matching pair');
  t.is(
    inline(secret.type.case === 'tlsCertificate' ? secret.type.value.privateKey : undefined),
    certs[1]!.privateKeyPem,
  );
  // Broken again (a key of another certificate): nothing new is sent, and the good pair is what is served.
  replace(key, certs[0]!.privateKeyPem);
  await waitFor(
    'the second mismatch to be reported',
    () => lines.filter((l) => l.secret === name && /does not belong/.test(String(l.problem))).length >= 2,
  );
  t.is(s.pending(), 0);
});

test('served file Secrets pass Envoy’s validation', async (t) => {
  const c = t.context.certs[1]!;
  await assertEnvoyValid(t, [
    anyBytes(
      SecretSchema,
      fileSecret({
        name: 'file-cert:/c.pem~/k.pem',
        kind: 'certificate',
        certificateChain: Buffer.from(c.certChainPem),
        privateKey: Buffer.from(c.privateKeyPem),
        version: 'v',
      }),
    ),
    anyBytes(
      SecretSchema,
      fileSecret({ name: 'file-root:/ca.pem', kind: 'root', trustedCa: Buffer.from(c.trustBundlePem), version: 'v' }),
    ),
  ]);
});
