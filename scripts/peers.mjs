#!/usr/bin/env node
// Builds the real peers that tests run against (tools/peers/peers.json) with Go, into one cache folder per
// peer (see scripts/peer-paths.mjs for the folder and its key). A folder that already holds every binary of
// its peer is reused; otherwise the peer is built into a temporary folder that is then renamed into place,
// so a folder is either complete or absent. Peers are built one after another.
//
//   npm run peers                     build every peer that is not cached yet
//   npm run peers -- kube etcd        only these peers
//   npm run peers -- --list           show each peer's cache folder and whether it is built
//   npm run peers -- --prune          also delete cache folders of peer versions no longer in the manifest
//
// Environment: TRELLIS_PEERS_CACHE (cache root, default ~/.cache/trellis/peers), GO (the go command),
// plus Go's own (GOMODCACHE, GOCACHE, GOPROXY, GOFLAGS). Needs Go >= 1.26 (etcd 3.6.16 requires it).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { peerBuildDir, peerKey, peerSpecs, peersCacheRoot, peersDir } from './peer-paths.mjs';

const PROGRESS_EVERY_MS = 30_000;

function fmtDuration(ms) {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

function fmtBytes(n) {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${Math.round(n / 1024)} kB`;
}

function shellQuote(arg) {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Bytes used on disk below `dir` (du when present, else a walk). */
function diskUse(dir) {
  if (!fs.existsSync(dir)) return 0;
  try {
    return Number(execFileSync('du', ['-sk', dir], { encoding: 'utf8' }).split('\t')[0]) * 1024;
  } catch {
    let total = 0;
    const walk = (d) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else total += fs.lstatSync(p).size;
      }
    };
    walk(dir);
    return total;
  }
}

function findGo() {
  const candidates = [];
  if (process.env.GO) candidates.push(process.env.GO);
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) if (dir) candidates.push(path.join(dir, 'go'));
  candidates.push('/usr/local/go/bin/go');
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      if (fs.statSync(c).isFile()) return c;
    } catch {
      // not this one
    }
  }
  return undefined;
}

function parseArgs(argv) {
  const opts = { names: [], list: false, prune: false };
  for (const a of argv) {
    if (a === '--list') opts.list = true;
    else if (a === '--prune') opts.prune = true;
    else if (a === '-h' || a === '--help') {
      console.log('usage: npm run peers [-- [--list] [--prune] [NAME...]]');
      process.exit(0);
    } else if (a.startsWith('-')) {
      console.error(`peers: unknown option ${a}`);
      process.exit(2);
    } else opts.names.push(a);
  }
  return opts;
}

function isComplete(spec, dir) {
  return spec.builds.every((b) => fs.existsSync(path.join(dir, b.binary)));
}

/** Runs a command, collecting its output; prints elapsed time every 30 s. Resolves with {code, output}. */
function run(cmd, args, { cwd, env, label }) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks = [];
    child.stdout.on('data', (d) => chunks.push(d));
    child.stderr.on('data', (d) => chunks.push(d));
    const timer = setInterval(
      () => console.log(`      … ${label}: ${fmtDuration(Date.now() - started)}`),
      PROGRESS_EVERY_MS,
    );
    const done = (code, extra = '') => {
      clearInterval(timer);
      resolve({ code, output: Buffer.concat(chunks).toString('utf8') + extra, ms: Date.now() - started });
    };
    child.on('error', (err) => done(-1, String(err)));
    child.on('close', (code, signal) => done(code ?? -1, signal ? `\n(killed by ${signal})` : ''));
  });
}

const tempDirs = new Set();
function cleanupTemps() {
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    cleanupTemps();
    console.error(`\npeers: interrupted (${sig})`);
    process.exit(sig === 'SIGINT' ? 130 : 143);
  });
}

async function buildPeer(spec, go, env) {
  const finalDir = peerBuildDir(spec);
  const root = peersCacheRoot();
  fs.mkdirSync(root, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(root, `.tmp-${peerKey(spec)}-`));
  tempDirs.add(tmp);
  const cwd = path.join(peersDir, spec.dir);
  const started = Date.now();
  for (const b of spec.builds) {
    const args = ['build', '-trimpath'];
    if (b.tags) args.push('-tags', b.tags);
    if (b.ldflags) args.push('-ldflags', b.ldflags);
    args.push('-o', path.join(tmp, b.binary), b.package);
    console.log(`      go build ${b.package} -> ${b.binary}`);
    const r = await run(go, args, { cwd, env, label: b.binary });
    if (r.code !== 0) {
      cleanupTemps();
      const shown = `cd ${shellQuote(cwd)} && CGO_ENABLED=0 GOTOOLCHAIN=local ${[go, ...args].map(shellQuote).join(' ')}`;
      console.error(`\npeers: building ${spec.name} failed (exit ${r.code}) after ${fmtDuration(r.ms)}:\n  ${shown}\n`);
      console.error(r.output.trimEnd());
      process.exit(1);
    }
    console.log(`      ${b.binary} built in ${fmtDuration(r.ms)}`);
  }
  let goVersion = '';
  try {
    goVersion = execFileSync(go, ['version'], { env, encoding: 'utf8' }).trim();
  } catch {
    // informational only
  }
  const info = { ...spec, key: peerKey(spec), go: goVersion, builtAt: new Date().toISOString() };
  info.buildSeconds = Math.round((Date.now() - started) / 1000);
  fs.writeFileSync(path.join(tmp, 'build-info.json'), JSON.stringify(info, null, 2) + '\n');
  // Atomic publish: the folder appears complete or not at all. An incomplete leftover is replaced; if a
  // concurrent run published first, keep its folder.
  if (fs.existsSync(finalDir) && !isComplete(spec, finalDir)) fs.rmSync(finalDir, { recursive: true, force: true });
  try {
    fs.renameSync(tmp, finalDir);
  } catch (err) {
    if (!(err.code === 'ENOTEMPTY' || err.code === 'EEXIST') || !isComplete(spec, finalDir)) throw err;
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  tempDirs.delete(tmp);
  return Date.now() - started;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const all = peerSpecs();
  const unknown = opts.names.filter((n) => !all.some((s) => s.name === n));
  if (unknown.length) {
    console.error(`peers: unknown peer(s) ${unknown.join(', ')}; known: ${all.map((s) => s.name).join(', ')}`);
    process.exit(2);
  }
  const selected = opts.names.length ? all.filter((s) => opts.names.includes(s.name)) : all;
  const root = peersCacheRoot();

  if (opts.list) {
    for (const s of selected) {
      const dir = peerBuildDir(s);
      console.log(`${s.name.padEnd(16)} ${s.version.padEnd(8)} ${isComplete(s, dir) ? 'built  ' : 'missing'} ${dir}`);
    }
    return;
  }

  console.log(`peers: cache ${root}`);
  const todo = selected.filter((s) => !isComplete(s, peerBuildDir(s)));
  let go;
  let env;
  if (todo.length) {
    go = findGo();
    if (!go) {
      console.error(
        `peers: Go is not installed (looked for $GO, go on PATH and /usr/local/go/bin/go); install Go >= 1.26 ` +
          `to build ${todo.map((s) => s.name).join(', ')}`,
      );
      process.exit(1);
    }
    env = {
      ...process.env,
      CGO_ENABLED: '0',
      GOTOOLCHAIN: 'local',
      PATH: `${path.dirname(go)}${path.delimiter}${process.env.PATH ?? ''}`,
    };
    console.log(`peers: using ${execFileSync(go, ['version'], { env, encoding: 'utf8' }).trim()}`);
  }

  const started = Date.now();
  let built = 0;
  for (const [i, s] of selected.entries()) {
    const dir = peerBuildDir(s);
    const head = `[${i + 1}/${selected.length}] ${s.name} ${s.version}`;
    if (isComplete(s, dir)) {
      console.log(`${head}: cached (${dir})`);
      continue;
    }
    console.log(`${head}: building ${s.builds.map((b) => b.binary).join(', ')}`);
    const ms = await buildPeer(s, go, env);
    built++;
    console.log(`${head}: built in ${fmtDuration(ms)} -> ${dir}`);
  }
  console.log(
    `peers: ${selected.length} peer(s) ready (${built} built, ${selected.length - built} cached) ` +
      `in ${fmtDuration(Date.now() - started)}`,
  );

  // Disk use: each current folder, stale folders (older keys), the Go caches.
  const current = new Set(all.map((s) => peerKey(s)));
  const parts = [];
  let total = 0;
  for (const s of all) {
    const dir = peerBuildDir(s);
    if (!fs.existsSync(dir)) continue;
    const n = diskUse(dir);
    total += n;
    parts.push(`${s.name} ${fmtBytes(n)}`);
  }
  const stale = fs.existsSync(root) ? fs.readdirSync(root).filter((e) => !e.startsWith('.') && !current.has(e)) : [];
  for (const e of stale) {
    const p = path.join(root, e);
    if (opts.prune) {
      fs.rmSync(p, { recursive: true, force: true });
      console.log(`peers: pruned ${p}`);
    } else {
      const n = diskUse(p);
      total += n;
      parts.push(`stale ${e} ${fmtBytes(n)}`);
    }
  }
  console.log(`peers: cache disk use ${fmtBytes(total)} in ${root}${parts.length ? ` (${parts.join(', ')})` : ''}`);
  if (stale.length && !opts.prune) console.log('peers: `npm run peers -- --prune` deletes the stale folders');
  if (go) {
    try {
      const goEnv = JSON.parse(execFileSync(go, ['env', '-json', 'GOMODCACHE', 'GOCACHE'], { env, encoding: 'utf8' }));
      console.log(
        `peers: Go caches: GOMODCACHE ${fmtBytes(diskUse(goEnv.GOMODCACHE))} (${goEnv.GOMODCACHE}), ` +
          `GOCACHE ${fmtBytes(diskUse(goEnv.GOCACHE))} (${goEnv.GOCACHE})`,
      );
    } catch {
      // informational only
    }
  }
}

main().catch((err) => {
  cleanupTemps();
  console.error(`peers: ${err.stack ?? err}`);
  process.exit(1);
});
