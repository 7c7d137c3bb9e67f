// The one implementation of where the real peers built from tools/peers/ live. scripts/peers.mjs (plain Node)
// and test/helpers/peer-paths.ts (typed re-export, see peer-paths.d.mts) both use it, so the cache key the
// build script writes is by construction the key the tests read.
//
// One cache folder per peer: <root>/<name>-<version>-<hash>/, where the hash covers the peer's manifest entry
// (packages, binaries, ldflags) and its wrapper module (go.mod, go.sum, *.go at the top of its folder), so
// any change to them gives a new folder and a rebuild. Root: $TRELLIS_PEERS_CACHE or ~/.cache/trellis/peers.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const peersDir = path.join(repoRoot, 'tools/peers');

export function peersCacheRoot() {
  return process.env.TRELLIS_PEERS_CACHE ?? path.join(os.homedir(), '.cache/trellis/peers');
}

export function peerSpecs() {
  const manifest = JSON.parse(fs.readFileSync(path.join(peersDir, 'peers.json'), 'utf8'));
  return manifest.peers;
}

/** The cache key of a peer: changes whenever its wrapper module or build entry changes. */
export function peerKey(spec) {
  const hash = createHash('sha256').update(JSON.stringify(spec));
  const dir = path.join(peersDir, spec.dir);
  for (const f of fs.readdirSync(dir).sort()) {
    if (f === 'go.mod' || f === 'go.sum' || f.endsWith('.go'))
      hash.update(f).update(fs.readFileSync(path.join(dir, f)));
  }
  return `${spec.name}-${spec.version}-${hash.digest('hex').slice(0, 12)}`;
}

export function peerBuildDir(spec) {
  return path.join(peersCacheRoot(), peerKey(spec));
}

/** The manifest entry that builds `binary`; throws when no peer builds it. */
export function peerSpecOfBinary(binary) {
  const spec = peerSpecs().find((s) => s.builds.some((b) => b.binary === binary));
  if (!spec) throw new Error(`no peer in tools/peers/peers.json builds a binary named ${binary}`);
  return spec;
}

/** Absolute path of a built peer binary (e.g. `kube-apiserver`), or undefined when it is not built yet. */
export function peerBinary(binary) {
  const file = path.join(peerBuildDir(peerSpecOfBinary(binary)), binary);
  return fs.existsSync(file) ? file : undefined;
}
