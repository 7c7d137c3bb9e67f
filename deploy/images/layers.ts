// What goes into the layers of the images `npm run images` builds, from this machine:
// - runtime: the running Node binary as /usr/local/bin/node and the shared libraries `ldd` lists for it
//   (at the paths it lists, with the loader), /etc/passwd and /etc/group (root, nonroot 65532, proxy
//   1337), a world-writable /tmp, and /usr/local/bin/trellis (a Node script that runs the app's main);
// - app: /app/package.json, /app/dist (the compiled sources) and the production packages of
//   /app/node_modules (package-lock.json entries without `dev`), each package's own files;
// - iptables (the proxy image, whose init container runs `trellis iptables --apply`): xtables-nft-multi
//   and xtables-legacy-multi with their iptables-*-restore/-save links, their libraries and the xtables
//   extension modules (loaded with dlopen, so ldd does not list them).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { LayerEntry } from './oci.js';

export const APP_DIR = '/app';
export const NODE_PATH = '/usr/local/bin/node';
export const TRELLIS_PATH = '/usr/local/bin/trellis';
export const NONROOT_UID = 65532;
export const PROXY_UID = 1337;

function modeOf(file: string): number {
  return fs.statSync(file).mode & 0o111 ? 0o755 : 0o644;
}

/** The libraries `ldd` lists for `binary` (absolute paths as listed, the loader included). */
export function sharedLibraries(binary: string): string[] {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  const libs = new Set<string>();
  for (const line of out.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) libs.add(m[1]);
    else if (/not found/.test(line)) throw new Error(`ldd ${binary}: ${line.trim()}`);
  }
  return [...libs].sort();
}

function libraryEntries(binaries: readonly string[]): LayerEntry[] {
  const libs = new Set(binaries.flatMap(sharedLibraries));
  return [...libs].map((lib) => ({ type: 'file', path: lib, mode: 0o755, source: fs.realpathSync(lib) }));
}

const PASSWD = `root:x:0:0:root:/root:/sbin/nologin
proxy:x:${PROXY_UID}:${PROXY_UID}:trellis proxy:/nonexistent:/sbin/nologin
nonroot:x:${NONROOT_UID}:${NONROOT_UID}:nonroot:/home/nonroot:/sbin/nologin
`;
const GROUP = `root:x:0:
proxy:x:${PROXY_UID}:
nonroot:x:${NONROOT_UID}:
`;
/** `trellis` on PATH (the injector's containers run `trellis agent`, `trellis iptables`). */
const LAUNCHER = `#!${NODE_PATH}
import('${APP_DIR}/dist/control-plane/main.js').catch((err) => {
  console.error(err);
  process.exit(1);
});
`;

/** Node and what it needs to run, plus users, /tmp and the `trellis` launcher. */
export function runtimeEntries(nodeBinary: string = process.execPath): LayerEntry[] {
  const node = fs.realpathSync(nodeBinary);
  return [
    { type: 'file', path: NODE_PATH, mode: 0o755, source: node },
    ...libraryEntries([node]),
    { type: 'file', path: '/etc/passwd', mode: 0o644, content: Buffer.from(PASSWD) },
    { type: 'file', path: '/etc/group', mode: 0o644, content: Buffer.from(GROUP) },
    { type: 'directory', path: '/tmp', mode: 0o1777 },
    { type: 'directory', path: '/home/nonroot', mode: 0o755 },
    { type: 'file', path: TRELLIS_PATH, mode: 0o755, content: Buffer.from(LAUNCHER) },
  ];
}

/** Every file and symlink below `dir` (not following symlinks), skipping `skip(relativePath)`. */
function walk(dir: string, skip: (relative: string) => boolean): { file: string; relative: string; link: boolean }[] {
  const out: { file: string; relative: string; link: boolean }[] = [];
  const visit = (current: string): void => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const file = path.join(current, entry.name);
      const relative = path.relative(dir, file);
      if (skip(relative)) continue;
      if (entry.isDirectory()) visit(file);
      else if (entry.isFile() || entry.isSymbolicLink()) out.push({ file, relative, link: entry.isSymbolicLink() });
    }
  };
  visit(dir);
  return out;
}

function treeEntries(source: string, target: string, skip: (relative: string) => boolean = () => false): LayerEntry[] {
  return walk(source, skip).map(({ file, relative, link }): LayerEntry => {
    const p = path.posix.join(target, relative.split(path.sep).join('/'));
    return link
      ? { type: 'symlink', path: p, target: fs.readlinkSync(file) }
      : { type: 'file', path: p, mode: modeOf(file), source: file };
  });
}

interface LockFile {
  readonly packages?: Readonly<Record<string, { readonly dev?: boolean; readonly link?: boolean }>>;
}

/** The production package folders of `root` (relative, `node_modules/…`), from its package-lock.json. */
export function productionPackages(root: string): string[] {
  const lockFile = path.join(root, 'package-lock.json');
  const lock = JSON.parse(fs.readFileSync(lockFile, 'utf8')) as LockFile;
  if (!lock.packages) throw new Error(`${lockFile}: no "packages" (lockfileVersion 2 or 3 is needed)`);
  return Object.entries(lock.packages)
    .filter(([key, info]) => key.startsWith('node_modules/') && !info.dev && !info.link)
    .map(([key]) => key)
    .filter((key) => fs.existsSync(path.join(root, key))) // optional packages of other platforms are absent
    .sort();
}

/** /app: package.json, dist/ and the production node_modules of `root`. */
export function appEntries(root: string): LayerEntry[] {
  const main = path.join(root, 'dist', 'control-plane', 'main.js');
  if (!fs.existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first`);
  const entries: LayerEntry[] = [
    { type: 'file', path: `${APP_DIR}/package.json`, mode: 0o644, source: path.join(root, 'package.json') },
    ...treeEntries(path.join(root, 'dist'), `${APP_DIR}/dist`, (r) => r.endsWith('.map')),
  ];
  for (const pkg of productionPackages(root)) {
    // Nested node_modules are packages of their own in the lock file (included or not by their own entry).
    entries.push(
      ...treeEntries(
        path.join(root, pkg),
        `${APP_DIR}/${pkg}`,
        (r) => r === 'node_modules' || r.startsWith(`node_modules${path.sep}`),
      ),
    );
  }
  return entries;
}

const IPTABLES_MULTI = { nft: 'xtables-nft-multi', legacy: 'xtables-legacy-multi' } as const;
const IPTABLES_LINKS = [
  'iptables',
  'iptables-restore',
  'iptables-save',
  'ip6tables',
  'ip6tables-restore',
  'ip6tables-save',
];

/** Where a binary is on this machine (/usr/sbin, /sbin, PATH). */
function findBinary(name: string): string {
  const dirs = ['/usr/sbin', '/sbin', '/usr/bin', ...(process.env.PATH ?? '').split(path.delimiter)];
  for (const dir of dirs) {
    const file = path.join(dir, name);
    if (dir && fs.existsSync(file)) return fs.realpathSync(file);
  }
  throw new Error(`${name} is not installed here (Debian: apt-get install iptables); the proxy image needs it`);
}

/** iptables (nft and legacy backends) for the proxy image's init container. */
export function iptablesEntries(): LayerEntry[] {
  const entries: LayerEntry[] = [];
  const binaries: string[] = [];
  for (const [backend, multi] of Object.entries(IPTABLES_MULTI)) {
    const binary = findBinary(multi);
    binaries.push(binary);
    entries.push({ type: 'file', path: `/usr/sbin/${multi}`, mode: 0o755, source: binary });
    for (const link of IPTABLES_LINKS) {
      const [family = 'iptables', ...rest] = link.split('-');
      entries.push({ type: 'symlink', path: `/usr/sbin/${[family, backend, ...rest].join('-')}`, target: multi });
    }
  }
  for (const link of IPTABLES_LINKS) {
    const [family = 'iptables', ...rest] = link.split('-');
    entries.push({ type: 'symlink', path: `/usr/sbin/${link}`, target: [family, 'nft', ...rest].join('-') });
  }
  const modules = path.dirname(
    fs.realpathSync(sharedLibraries(binaries[0]!).find((l) => /libxtables\.so/.test(l)) ?? ''),
  );
  const xtables = path.join(modules, 'xtables');
  if (!fs.existsSync(xtables)) throw new Error(`${xtables}: the iptables extension modules are missing`);
  entries.push(...libraryEntries(binaries), ...treeEntries(xtables, xtables));
  return entries;
}
