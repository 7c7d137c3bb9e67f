// The workload certificate as files for a proxyless gRPC application, whose bootstrap points grpc-js's
// `file_watcher` certificate providers at them (bootstrap-grpc.ts). The three files change together, in
// the layout of the Kubernetes AtomicWriter (what the kubelet does for Secret and projected volumes):
//
//   <dir>/..2026_11_26_09_36_04.123_Ab12Cd/{cert.pem,key.pem,ca.pem}   one generation, never modified
//   <dir>/..data -> ..2026_11_26_09_36_04.123_Ab12Cd                     swapped by rename(2)
//   <dir>/cert.pem -> ..data/cert.pem   (and key.pem, ca.pem)           made once
//
// A generation is complete (written and fsynced) before `..data` points at it, and `..data` changes in
// one atomic rename, so a file is never seen half-written or missing, and a reader that resolves `..data`
// once (realpath) reads a matching set. A reader that opens `cert.pem` and `key.pem` separately (grpc-js
// does, concurrently) resolves `..data` once per open: only a swap in the microseconds between its two
// opens can pair files of two generations, and its next refresh reads a matching set again.
// Old generations are removed after a swap; the previous one is kept for readers still on it.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { TlsMaterial } from '../certs/certificate-provider.js';

export const CERT_FILE = 'cert.pem';
export const KEY_FILE = 'key.pem';
export const CA_FILE = 'ca.pem';
export const DATA_LINK = '..data';

export interface CertFilePaths {
  readonly certificateFile: string;
  readonly privateKeyFile: string;
  readonly caCertificateFile: string;
}

/** Where the files of `dir` are (what the gRPC bootstrap names). */
export function certFilePaths(dir: string): CertFilePaths {
  return {
    certificateFile: path.join(dir, CERT_FILE),
    privateKeyFile: path.join(dir, KEY_FILE),
    caCertificateFile: path.join(dir, CA_FILE),
  };
}

const FILES: readonly { readonly name: string; readonly mode: number; readonly pick: (m: TlsMaterial) => string }[] = [
  { name: CERT_FILE, mode: 0o644, pick: (m) => m.certChainPem },
  { name: KEY_FILE, mode: 0o600, pick: (m) => m.privateKeyPem },
  { name: CA_FILE, mode: 0o644, pick: (m) => m.trustBundlePem },
];

/** Writes one file and flushes it to disk before it becomes visible. */
async function writeDurably(file: string, content: string, mode: number): Promise<void> {
  const handle = await fs.open(file, 'wx', mode);
  try {
    await handle.writeFile(content);
    await handle.chmod(mode); // open() applies the umask; make the mode exact
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function timestampName(now: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return (
    `..${now.getUTCFullYear()}_${p(now.getUTCMonth() + 1)}_${p(now.getUTCDate())}_` +
    `${p(now.getUTCHours())}_${p(now.getUTCMinutes())}_${p(now.getUTCSeconds())}.${p(now.getUTCMilliseconds(), 3)}_`
  );
}

async function readLinkOrUndefined(file: string): Promise<string | undefined> {
  try {
    return await fs.readlink(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Points `link` at `target` atomically: a temporary symlink renamed over it. */
async function swapSymlink(dir: string, link: string, target: string): Promise<void> {
  const tmp = path.join(dir, `${link}_tmp`);
  await fs.rm(tmp, { force: true });
  await fs.symlink(target, tmp);
  await fs.rename(tmp, path.join(dir, link));
}

// Writes to one directory are serialised (two generations racing for `..data` would be harmless but
// could delete each other's directories).
const queues = new Map<string, Promise<unknown>>();

/**
 * Writes `material` to `dir` as a new generation and makes it current (see the top of this file).
 * Creates `dir` (0755) when missing. Resolves with the generation's directory.
 */
export function writeCertFiles(dir: string, material: TlsMaterial, now = new Date()): Promise<string> {
  const key = path.resolve(dir);
  const previous = queues.get(key) ?? Promise.resolve();
  const next = previous.catch(() => undefined).then(() => writeGeneration(key, material, now));
  const settled = next.catch(() => undefined);
  queues.set(key, settled);
  void settled.then(() => {
    if (queues.get(key) === settled) queues.delete(key);
  });
  return next;
}

async function writeGeneration(dir: string, material: TlsMaterial, now: Date): Promise<string> {
  await fs.mkdir(dir, { recursive: true, mode: 0o755 });
  const generation = await fs.mkdtemp(path.join(dir, timestampName(now)));
  await fs.chmod(generation, 0o755);
  for (const f of FILES) await writeDurably(path.join(generation, f.name), f.pick(material), f.mode);
  const old = await readLinkOrUndefined(path.join(dir, DATA_LINK));
  await swapSymlink(dir, DATA_LINK, path.basename(generation));
  for (const f of FILES) {
    const target = path.join(DATA_LINK, f.name);
    if ((await readLinkOrUndefined(path.join(dir, f.name))) !== target) await swapSymlink(dir, f.name, target);
  }
  const directory = await fs.open(dir, 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
  // Keep the current and the previous generation; remove the rest.
  const keep = new Set([path.basename(generation), old && path.basename(old)]);
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory() && entry.name.startsWith('..') && !keep.has(entry.name)) {
      await fs.rm(path.join(dir, entry.name), { recursive: true, force: true });
    }
  }
  return generation;
}
