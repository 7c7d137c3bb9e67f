// `trellis iptables --apply`: hands the capture rules to iptables-restore of the chosen backend. I/O only;
// the rules come from iptables.ts.
import { spawn, spawnSync } from 'node:child_process';

export type Backend = 'nft' | 'legacy';
export type BackendChoice = Backend | 'auto';

const RESTORE: Record<Backend, string> = { nft: 'iptables-nft-restore', legacy: 'iptables-legacy-restore' };
const SAVE: Record<Backend, string> = { nft: 'iptables-nft-save', legacy: 'iptables-legacy-save' };

function runs(binary: string, args: readonly string[]): { ok: boolean; stdout: string } {
  const result = spawnSync(binary, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { ok: result.error === undefined && result.status === 0, stdout: result.stdout ?? '' };
}

/** Number of rules (`-A` lines) the backend's save shows; undefined when its binary is missing or fails. */
function ruleCount(backend: Backend): number | undefined {
  const saved = runs(SAVE[backend], []);
  return saved.ok ? saved.stdout.split('\n').filter((l) => l.startsWith('-A ')).length : undefined;
}

/**
 * `auto` (as kube-proxy and istio-iptables decide): the backend that already holds rules in this network
 * namespace, legacy only when it holds more than nft; otherwise nft when its tools run, else legacy.
 */
export function detectBackend(): Backend {
  const nft = ruleCount('nft');
  const legacy = ruleCount('legacy');
  if (legacy !== undefined && (nft === undefined || legacy > nft)) return 'legacy';
  if (nft !== undefined) return 'nft';
  throw new Error('neither iptables-nft-save nor iptables-legacy-save runs here: install iptables (1.8 or later)');
}

export function restoreBinary(backend: Backend): string {
  return RESTORE[backend];
}

/**
 * Runs `<backend>-restore --noflush` (our chains are declared, so they are created or flushed; other
 * rules stay) with `rules` on stdin; `test` adds `--test` (parse and check, change nothing).
 */
export function restoreRules(backend: Backend, rules: string, options: { test?: boolean } = {}): Promise<void> {
  const binary = RESTORE[backend];
  const args = ['--noflush', ...(options.test ? ['--test'] : [])];
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => reject(new Error(`${binary}: ${err.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`${binary} ${args.join(' ')} exited ${code}: ${stderr.trim()}`));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(rules);
  });
}
