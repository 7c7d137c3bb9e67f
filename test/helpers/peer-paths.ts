// Where the real peers built from tools/peers/ live: one cache folder per peer, keyed by its name, version
// and a hash of its wrapper module (go.mod, go.sum, Go sources) and build entry, so a change rebuilds it.
// scripts/peers.mjs builds into these folders; tests only read them.
//
// The implementation is scripts/peer-paths.mjs, shared with scripts/peers.mjs (which must run on plain Node,
// without TypeScript), so the key is computed in exactly one place.
import * as shared from '../../scripts/peer-paths.mjs';
import type { PeerBuild, PeerSpec } from '../../scripts/peer-paths.mjs';

export type { PeerBuild, PeerSpec };

export const repoRoot: string = shared.repoRoot;
export const peersDir: string = shared.peersDir;

export function peersCacheRoot(): string {
  return shared.peersCacheRoot();
}

export function peerSpecs(): PeerSpec[] {
  return shared.peerSpecs();
}

/** The cache key of a peer: changes whenever its wrapper module or build entry changes. */
export function peerKey(spec: PeerSpec): string {
  return shared.peerKey(spec);
}

export function peerBuildDir(spec: PeerSpec): string {
  return shared.peerBuildDir(spec);
}

/** The manifest entry that builds `binary`; throws when no peer builds it. */
export function peerSpecOfBinary(binary: string): PeerSpec {
  return shared.peerSpecOfBinary(binary);
}

/** Absolute path of a built peer binary (e.g. `kube-apiserver`), or undefined when it is not built yet. */
export function peerBinary(binary: string): string | undefined {
  return shared.peerBinary(binary);
}
