// Local-mode persistence: the root is made on first start under --state-dir (key 0600) and reused.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PluginCaError } from '../../certs/index.js';
import { loadOrCreateLocalCa, loadPluginCaDir } from '../../control-plane/ca/store.js';
import { makeRootAndIntermediate } from './ca-helpers.js';

function tmpDir(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-ca-store-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('local mode: root-cert.pem and root-key.pem (0600) are made on first start and reused after', async (t) => {
  const dir = path.join(tmpDir(t), 'state');
  const first = await loadOrCreateLocalCa(dir);
  t.true(first.created);
  t.is(fs.statSync(path.join(dir, 'root-key.pem')).mode & 0o777, 0o600);
  t.regex(fs.readFileSync(path.join(dir, 'root-cert.pem'), 'utf8'), /BEGIN CERTIFICATE/);
  const second = await loadOrCreateLocalCa(dir);
  t.false(second.created);
  t.is(second.material.root.toPem(), first.material.root.toPem());
  t.deepEqual(fs.readdirSync(dir).sort(), ['root-cert.pem', 'root-key.pem'], 'no temporary files left');
});

test('local mode: a lone root-cert.pem is an error naming root-key.pem, not a new CA', async (t) => {
  const dir = tmpDir(t);
  await loadOrCreateLocalCa(dir);
  fs.rmSync(path.join(dir, 'root-key.pem'));
  const err = await t.throwsAsync(loadOrCreateLocalCa(dir), { instanceOf: PluginCaError });
  t.is(err?.file, path.join(dir, 'root-key.pem'));
});

test('plug-in directory: the four files are read; a missing one is named', async (t) => {
  const dir = tmpDir(t);
  const p = await makeRootAndIntermediate();
  fs.writeFileSync(path.join(dir, 'ca-cert.pem'), p.caCertPem);
  fs.writeFileSync(path.join(dir, 'ca-key.pem'), p.caKeyPem);
  fs.writeFileSync(path.join(dir, 'cert-chain.pem'), p.caCertPem + p.rootCertPem);
  const err = await t.throwsAsync(loadPluginCaDir(dir), { instanceOf: PluginCaError });
  t.is(err?.file, path.join(dir, 'root-cert.pem'));
  t.regex(err?.message ?? '', /is missing/);
  fs.writeFileSync(path.join(dir, 'root-cert.pem'), p.rootCertPem);
  const loaded = await loadPluginCaDir(dir);
  t.is(loaded.material.root.subject, 'CN=Example Corp Root, O=Example Corp');
});
