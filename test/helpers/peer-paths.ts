// Where the real peers built from tools/peers/ live: one cache folder per peer, keyed by its name, version
// and a hash of its wrapper module (go.mod, go.sum, Go sources) and build entry, so a change rebuilds it.
// scripts/peers.mjs builds into these folders; tests only read them.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PeerBuild {
  readonly package: string;
  readonly binary: string;
  readonly ldflags?: string;
}

export interface PeerSpec {
  readonly name: string;
  readonly dir: string;
  readonly version: string;
  readonly builds: readonly PeerBuild[];
}

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const peersDir = path.join(repoRoot, 'tools/peers');

export function peersCacheRoot(): string {
  return process.env.TRELLIS_PEERS_CACHE ?? path.join(os.homedir(), '.cache/trellis/peers');
}

export function peerSpecs(): PeerSpec[] {
  const manifest = JSON.parse(fs.readFileSync(path.join(peersDir, 'peers.json'), 'utf8')) as { peers: PeerSpec[] };
  return manifest.peers;
}

/** The cache key of a peer: changes whenever its wrapper module or build entry changes. */
export function peerKey(spec: PeerSpec): string {
  const hash = createHash('sha256').update(JSON.stringify(spec));
  const dir = path.join(peersDir, spec.dir);
  for (const f of fs.readdirSync(dir).sort()) {
    if (f === 'go.mod' || f === 'go.sum' || f.endsWith('.go')) hash.update(f).update(fs.readFileSync(path.join(dir, f)));
  }
  return `${spec.name}-${spec.version}-${hash.digest('hex').slice(0, 12)}`;
}

export function peerBuildDir(spec: PeerSpec): string {
  return path.join(peersCacheRoot(), peerKey(spec));
}

/** Absolute path of a built peer binary (e.g. `kube-apiserver`), or undefined when it is not built yet. */
export function peerBinary(binary: string): string | undefined {
  for (const spec of peerSpecs()) {
    if (!spec.builds.some((b) => b.binary === binary)) continue;
    const file = path.join(peerBuildDir(spec), binary);
    return fs.existsSync(file) ? file : undefined;
  }
  throw new Error(`no peer in tools/peers/peers.json builds a binary named ${binary}`);
}
