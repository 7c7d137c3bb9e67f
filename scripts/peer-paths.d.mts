// Types of scripts/peer-paths.mjs (plain JavaScript so that scripts/peers.mjs runs on bare Node).
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

export const repoRoot: string;
export const peersDir: string;
export function peersCacheRoot(): string;
export function peerSpecs(): PeerSpec[];
export function peerKey(spec: PeerSpec): string;
export function peerBuildDir(spec: PeerSpec): string;
export function peerSpecOfBinary(binary: string): PeerSpec;
export function peerBinary(binary: string): string | undefined;
