// FileSource against a real temporary directory and real fs.watch events. Tests wait for the source's
// change events (with a deadline), never for a fixed time.
import test from 'ava';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../control-plane/logger.js';
import { virtualServiceFor } from '../../control-plane/model/lookup.js';
import { workloadMtls } from '../../control-plane/model/peer-authentication.js';
import type { MeshSnapshot } from '../../control-plane/model/snapshot.js';
import { FileSource } from '../../control-plane/sources/file-source.js';
import { formatIssue, validateRoutingResource } from '../../crds/validator.js';
import { prng } from '../helpers/prng.js';

/** Resolves with the first snapshot (the current one, or one announced later) for which `check` holds. */
function waitForSnapshot(
  source: FileSource,
  what: string,
  check: (s: MeshSnapshot) => boolean,
  timeoutMs = 5_000,
): Promise<MeshSnapshot> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      unsubscribe();
    };
    const timer = setTimeout(() => {
      done();
      const s = source.current();
      reject(
        new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}; version ${s.version}, services ${s.services.map((x) => x.name).join(',')}, problems: ${s.problems.map((p) => p.message).join(' | ')}`,
        ),
      );
    }, timeoutMs);
    const probe = () => {
      if (source.ready() && check(source.current())) {
        done();
        resolve(source.current());
      }
    };
    const unsubscribe = source.onChange(probe);
    probe();
  });
}

const serviceNames = (s: MeshSnapshot) => s.services.map((x) => `${x.namespace}/${x.name}`);

function svc(name: string, port = 80, ns?: string): string {
  return `apiVersion: v1
kind: Service
metadata:
  name: ${name}
${ns ? `  namespace: ${ns}\n` : ''}spec:
  ports:
    - name: http
      port: ${port}
`;
}

function vs(name: string, subset: string): string {
  return `apiVersion: networking.trellis.dev/v1alpha1
kind: VirtualService
metadata: { name: ${name}, namespace: default }
spec:
  hosts: [${name}]
  http:
    - route:
        - destination: { host: ${name}, subset: ${subset} }
`;
}

interface Fixture {
  dir: string;
  source: FileSource;
  logs: string[];
}

/** A FileSource on a new directory holding `files`; `timing`: its debounce times (defaults otherwise). */
async function startSource(
  files: Record<string, string>,
  timing: { readonly debounceMs?: number; readonly renameDebounceMs?: number; readonly maxNamedPaths?: number } = {},
): Promise<Fixture> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-files-'));
  for (const [name, text] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await fs.writeFile(path.join(dir, name), text);
  }
  const logs: string[] = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => logs.push(...chunk.toString('utf8').split('\n').filter(Boolean)));
  const source = new FileSource({
    directory: dir,
    validate: validateRoutingResource,
    formatIssue,
    logger: createLogger({ level: 'info', destination: stream }),
    ...timing,
  });
  await source.start();
  return { dir, source, logs };
}

async function cleanup(f: Fixture): Promise<void> {
  await f.source.stop();
  await fs.rm(f.dir, { recursive: true, force: true });
}

/** Writes atomically (temporary file + rename), as editors and `kubectl`-like tools do. */
async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  await fs.writeFile(tmp, text);
  await fs.rename(tmp, file);
}

test('the first full read makes it ready; multi-document files and subdirectories are read', async (t) => {
  const f = await startSource({
    'a.yaml': `${svc('a')}---\n${svc('b', 81, 'shop')}`,
    'nested/deeper/c.yml': svc('c'),
    'd.json': JSON.stringify({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'd' },
      spec: { ports: [{ port: 1 }] },
    }),
    'notes.txt': svc('ignored'),
    '.hidden.yaml': svc('hidden'),
    'deploy.yaml': 'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: x }\n',
  });
  t.teardown(() => cleanup(f));
  t.true(f.source.ready());
  const s = f.source.current();
  t.is(s.version, 1);
  // Sorted by FQDN: b.shop.svc… before c.default.svc…
  t.deepEqual(serviceNames(s), ['default/a', 'shop/b', 'default/c', 'default/d']);
  t.deepEqual(s.index.servicesByFqdn.get('b.shop.svc.cluster.local')!.origin, {
    file: path.join(f.dir, 'a.yaml'),
    document: 1,
  });
  t.deepEqual(
    s.problems.map((p) => [p.severity, p.message]),
    [['info', `${path.join(f.dir, 'deploy.yaml')}#1: skipped a document of kind Deployment (not read by the mesh)`]],
  );
});

test('adding, editing and deleting files updates the model', async (t) => {
  const f = await startSource({ 'a.yaml': svc('a') });
  t.teardown(() => cleanup(f));
  const changes: number[] = [];
  f.source.onChange(() => changes.push(f.source.current().version));

  await fs.writeFile(path.join(f.dir, 'b.yaml'), svc('b'));
  await waitForSnapshot(f.source, 'b added', (s) => serviceNames(s).includes('default/b'));

  await writeAtomic(path.join(f.dir, 'b.yaml'), svc('b', 8080));
  await waitForSnapshot(
    f.source,
    'b edited',
    (s) => s.index.servicesByFqdn.get('b.default.svc.cluster.local')?.ports[0]?.port === 8080,
  );

  await fs.appendFile(path.join(f.dir, 'b.yaml'), `---\n${svc('c')}`);
  await waitForSnapshot(f.source, 'c appended', (s) => serviceNames(s).includes('default/c'));

  await fs.rm(path.join(f.dir, 'b.yaml'));
  const s = await waitForSnapshot(f.source, 'b.yaml deleted', (x) => serviceNames(x).join() === 'default/a');
  t.deepEqual(serviceNames(s), ['default/a']);
  // Versions only go up, one per published change.
  t.deepEqual(
    changes,
    [...changes].sort((x, y) => x - y),
  );
  t.true(new Set(changes).size === changes.length);
});

test('a broken file keeps its last good content, leaves the others, and is reported', async (t) => {
  const f = await startSource({ 'a.yaml': svc('a'), 'b.yaml': `${svc('b')}---\n${svc('b2')}` });
  t.teardown(() => cleanup(f));
  const file = path.join(f.dir, 'b.yaml');

  await writeAtomic(file, `${svc('b')}---\napiVersion: v1\nkind: Service\nmetadata: { name: [oops\n`);
  await fs.writeFile(path.join(f.dir, 'c.yaml'), svc('c'));
  const s = await waitForSnapshot(
    f.source,
    'the broken file reported and c added',
    (x) =>
      x.problems.some((p) => p.message.startsWith(`${file}#2: does not parse`)) &&
      serviceNames(x).includes('default/c'),
  );
  // b.yaml's last good content (b and b2) is still there; a and c are unaffected.
  t.deepEqual(serviceNames(s), ['default/a', 'default/b', 'default/b2', 'default/c']);
  t.true(
    s.problems.some(
      (p) => p.severity === 'warning' && p.message === `${file}: keeping its last good content (2 objects)`,
    ),
  );
  t.true(
    f.logs.some((line) => {
      const entry = JSON.parse(line) as { level: number; msg: string; file?: string; document?: number };
      return entry.level === 50 && entry.file === file && entry.document === 1 && entry.msg.includes('does not parse');
    }),
    f.logs.join('\n'),
  );

  // Fixed: the new content replaces the kept one and the problem is gone.
  await writeAtomic(file, svc('b3'));
  const fixed = await waitForSnapshot(f.source, 'b.yaml fixed', (x) => serviceNames(x).includes('default/b3'));
  t.deepEqual(serviceNames(fixed), ['default/a', 'default/b3', 'default/c']);
  t.deepEqual(fixed.problems, []);
});

test('a file broken from the start contributes nothing until it parses', async (t) => {
  const f = await startSource({ 'a.yaml': svc('a'), 'b.yaml': 'kind: Service\nmetadata: { name: [b\n' });
  t.teardown(() => cleanup(f));
  const s = f.source.current();
  t.deepEqual(serviceNames(s), ['default/a']);
  t.is(s.problems.length, 1);
  t.is(s.problems[0]!.severity, 'error');
  await writeAtomic(path.join(f.dir, 'b.yaml'), svc('b'));
  await waitForSnapshot(f.source, 'b parses', (x) => serviceNames(x).includes('default/b') && x.problems.length === 0);
  t.pass();
});

test('routing resources in files: an invalid one is rejected and keeps its last accepted version', async (t) => {
  const f = await startSource({
    'svc.yaml': `${svc('reviews')}---\n${svc('ratings')}`,
    'routing/vs.yaml': vs('reviews', 'v1'),
  });
  t.teardown(() => cleanup(f));
  t.is(
    virtualServiceFor(f.source.current(), 'reviews', 'default')?.spec.http?.[0]?.route?.[0]?.destination.subset,
    'v1',
  );

  // Valid YAML, invalid resource (negative weight).
  await writeAtomic(
    path.join(f.dir, 'routing/vs.yaml'),
    vs('reviews', 'v2').replace('subset: v2 }', 'subset: v2 }\n          weight: -1'),
  );
  await fs.writeFile(path.join(f.dir, 'routing/ratings.yaml'), vs('ratings', 'v1'));
  const s = await waitForSnapshot(
    f.source,
    'the invalid VirtualService judged',
    (x) =>
      x.statuses.some((st) => st.name === 'reviews' && st.reason === 'Invalid') &&
      x.statuses.some((st) => st.name === 'ratings'),
  );
  const kept = virtualServiceFor(s, 'reviews', 'default')!;
  t.true(kept.stale);
  t.is(kept.spec.http![0]!.route![0]!.destination.subset, 'v1');
  t.is(virtualServiceFor(s, 'ratings', 'default')?.name, 'ratings');
  t.true(
    s.problems.some(
      (p) =>
        p.message ===
        `${path.join(f.dir, 'routing/vs.yaml')}#1: VirtualService default/reviews: spec.http[0].route[0].weight: must be >= 0`,
    ),
  );
});

function pa(name: string, ns: string, spec: string): string {
  return `apiVersion: security.trellis.dev/v1alpha1
kind: PeerAuthentication
metadata: { name: ${name}, namespace: ${ns} }
spec: ${spec}
`;
}

test('PeerAuthentications in files: read, precedence applied, an invalid edit keeps the last accepted version', async (t) => {
  const f = await startSource({
    'ns.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata: { name: shop }\n',
    'mtls/mesh.yaml': pa('default', 'trellis-system', '{ mtls: { mode: STRICT } }'),
    'mtls/shop.yaml': pa('default', 'shop', '{ mtls: { mode: UNSET } }'),
  });
  t.teardown(() => cleanup(f));
  const modeOf = (s: MeshSnapshot, labels: Record<string, string> = { app: 'web' }) =>
    workloadMtls(s, 'shop', labels, 'PERMISSIVE').mode;
  const first = f.source.current();
  t.is(modeOf(first), 'STRICT', 'UNSET in shop inherits the mesh policy');
  t.deepEqual(
    first.statuses.map((st) => `${st.kind} ${st.namespace}/${st.name}: ${st.reason}`),
    ['PeerAuthentication shop/default: Accepted', 'PeerAuthentication trellis-system/default: Accepted'],
  );

  // A workload policy arrives in a new file: it wins for its labels.
  await writeAtomic(
    path.join(f.dir, 'mtls/web.yaml'),
    pa('web', 'shop', '{ selector: { matchLabels: { app: web } }, mtls: { mode: DISABLE } }'),
  );
  const withWorkload = await waitForSnapshot(f.source, 'the workload policy', (x) => modeOf(x) === 'DISABLE');
  t.is(modeOf(withWorkload, { app: 'other' }), 'STRICT');

  // Invalid edit (portLevelMtls without a selector): rejected, reported, the accepted version kept.
  await writeAtomic(
    path.join(f.dir, 'mtls/shop.yaml'),
    pa('default', 'shop', "{ portLevelMtls: { '8080': { mode: DISABLE } } }"),
  );
  const s = await waitForSnapshot(f.source, 'the invalid PeerAuthentication judged', (x) =>
    x.statuses.some((st) => st.kind === 'PeerAuthentication' && st.namespace === 'shop' && st.reason === 'Invalid'),
  );
  t.true(s.peerAuthentications.find((p) => p.namespace === 'shop' && p.name === 'default')!.stale);
  t.is(modeOf(s, { app: 'other' }), 'STRICT');
  t.true(
    s.problems.some(
      (p) =>
        p.message ===
        `${path.join(f.dir, 'mtls/shop.yaml')}#1: PeerAuthentication shop/default: spec.portLevelMtls: requires a selector with matchLabels`,
    ),
  );

  // Deleting the mesh policy: the mesh config decides again.
  await fs.rm(path.join(f.dir, 'mtls/mesh.yaml'));
  const gone = await waitForSnapshot(
    f.source,
    'the mesh policy deleted',
    (x) => modeOf(x, { app: 'other' }) === 'PERMISSIVE',
  );
  t.false(gone.statuses.some((st) => st.namespace === 'trellis-system'));
});

test('a new subdirectory is watched, and an object defined twice is reported', async (t) => {
  const f = await startSource({ 'a.yaml': svc('a') });
  t.teardown(() => cleanup(f));
  await fs.mkdir(path.join(f.dir, 'team/x'), { recursive: true });
  await fs.writeFile(path.join(f.dir, 'team/x/b.yaml'), svc('b'));
  await waitForSnapshot(f.source, 'b in a new subdirectory', (s) => serviceNames(s).includes('default/b'));

  await fs.writeFile(path.join(f.dir, 'team/x/a-again.yaml'), svc('a', 9999));
  const s = await waitForSnapshot(f.source, 'the duplicate reported', (x) =>
    x.problems.some((p) => p.message.includes('is already defined in')),
  );
  // The first by path wins: a.yaml sorts before team/x/a-again.yaml.
  t.is(s.index.servicesByFqdn.get('a.default.svc.cluster.local')!.ports[0]!.port, 80);
  t.deepEqual(
    s.problems.map((p) => p.message),
    [
      `${path.join(f.dir, 'team/x/a-again.yaml')}#1: Service default/a is already defined in ${path.join(f.dir, 'a.yaml')}#1; this copy is ignored`,
    ],
  );

  await fs.rm(path.join(f.dir, 'team'), { recursive: true });
  await waitForSnapshot(
    f.source,
    'the subdirectory removed',
    (x) => serviceNames(x).join() === 'default/a' && x.problems.length === 0,
  );
  t.pass();
});

test('a rescan that finds nothing new publishes nothing; stop ends the watching', async (t) => {
  const f = await startSource({ 'a.yaml': svc('a') });
  t.teardown(() => cleanup(f));
  let changes = 0;
  f.source.onChange(() => changes++);
  await f.source.rescan();
  await f.source.rescan();
  t.is(changes, 0);
  t.is(f.source.current().version, 1);
  await f.source.stop();
  await fs.writeFile(path.join(f.dir, 'b.yaml'), svc('b'));
  await f.source.rescan();
  t.is(changes, 0);
});

test('an atomic write is read after the short rename quiet time, not the full debounce', async (t) => {
  // A full debounce far longer than the test's wait: only the rename rule can make the change seen in time.
  const f = await startSource({ 'a.yaml': svc('a') }, { debounceMs: 600_000, renameDebounceMs: 10 });
  t.teardown(() => cleanup(f));
  const { dir, source } = f;
  // The temporary file is written (events for a hidden file), then renamed over the real one.
  await writeAtomic(path.join(dir, 'b.yaml'), svc('b'));
  await waitForSnapshot(source, 'b from an atomic write', (s) => serviceNames(s).includes('default/b'), 30_000);
  // A ConfigMap-style swap: a new hidden directory and a renamed symlink.
  await fs.mkdir(path.join(dir, '..v2'));
  await fs.writeFile(path.join(dir, '..v2', 'c.yaml'), svc('c'));
  await fs.symlink('..v2/c.yaml', path.join(dir, '.c.yaml.tmp'));
  await fs.rename(path.join(dir, '.c.yaml.tmp'), path.join(dir, 'c.yaml'));
  await waitForSnapshot(source, 'c from a renamed symlink', (s) => serviceNames(s).includes('default/c'), 30_000);
  t.deepEqual(serviceNames(source.current()), ['default/a', 'default/b', 'default/c']);
});

test('a published snapshot says how long ago its change was seen (the push debounce counts from then)', async (t) => {
  // A rename quiet time long enough that the age must show it, whatever the machine's load.
  const f = await startSource({ 'a.yaml': svc('a') }, { debounceMs: 600_000, renameDebounceMs: 300 });
  t.teardown(() => cleanup(f));
  const { dir, source } = f;
  const told = new Promise<number | undefined>((resolve) =>
    source.onChange((_change, timing) => resolve(timing?.observedMsAgo)),
  );
  const before = Date.now();
  await writeAtomic(path.join(dir, 'b.yaml'), svc('b'));
  const age = await told;
  const sinceWrite = Date.now() - before;
  t.true(serviceNames(source.current()).includes('default/b'));
  t.true(age !== undefined && age >= 250, `seen ${age} ms before the snapshot (at least the 300 ms rename quiet time)`);
  t.true(age! <= sinceWrite, `not before the write (${sinceWrite} ms ago)`);
});

test('random file edits: the objects patched into the store equal a fresh read of the directory', async (t) => {
  // Edits of one file are patched into the store when no key is defined twice; duplicates, deletions and
  // broken files take the full path. Either way the store must hold what a fresh read finds.
  const random = prng(1601);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const f = await startSource({ 'a.yaml': svc('s1'), 'b.yaml': svc('s2') + '---\n' + svc('s3') });
  t.teardown(() => cleanup(f));
  const files = ['a.yaml', 'b.yaml', 'c.yaml', 'sub/d.yaml'];
  const names = ['s1', 's2', 's3', 's4', 's5'];
  const view = (source: FileSource) =>
    JSON.stringify({
      objects: source.store.list().map((o) => [o.kind, o.namespace, o.name, o.origin, o.object]),
      problems: source.store.problems().map((p) => p.message),
    });
  for (let step = 0; step < 40; step++) {
    const file = path.join(f.dir, pick(files));
    const action = random();
    if (action < 0.6) {
      const docs = Array.from({ length: 1 + Math.floor(random() * 3) }, () =>
        svc(pick(names), 80 + Math.floor(random() * 3)),
      );
      await fs.mkdir(path.dirname(file), { recursive: true });
      await writeAtomic(file, docs.join('---\n'));
    } else if (action < 0.85) {
      await fs.rm(file, { force: true });
    } else {
      await fs.mkdir(path.dirname(file), { recursive: true });
      await writeAtomic(file, 'kind: Service\nmetadata: [unclosed\n');
    }
    await f.source.rescan();
    const fresh = new FileSource({ directory: f.dir, validate: validateRoutingResource, formatIssue });
    await fresh.start();
    const same = view(f.source) === view(fresh);
    await fresh.stop();
    // A broken file keeps its last good content in the running source, which a fresh read never saw.
    if (
      !same &&
      (await Promise.all(files.map((x) => fs.readFile(path.join(f.dir, x), 'utf8').catch(() => '')))).some((x) =>
        x.includes('[unclosed'),
      )
    ) {
      for (const x of files) {
        const full = path.join(f.dir, x);
        if ((await fs.readFile(full, 'utf8').catch(() => '')).includes('[unclosed')) await fs.rm(full);
      }
      await f.source.rescan();
      const again = new FileSource({ directory: f.dir, validate: validateRoutingResource, formatIssue });
      await again.start();
      t.is(view(f.source), view(again), `step ${step}: after removing the broken files`);
      await again.stop();
      continue;
    }
    t.true(same, `step ${step}: the store differs from a fresh read`);
  }
});

test('a watched change reads only the files its events name', async (t) => {
  const files = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`s${i}.yaml`, svc(`s${i}`)]));
  const f = await startSource({ ...files, 'sub/x.yaml': svc('x') });
  t.teardown(() => cleanup(f));
  const port = (s: MeshSnapshot, name: string) =>
    s.index.servicesByFqdn.get(`${name}.default.svc.cluster.local`)?.ports[0]?.port;
  t.deepEqual(f.source.lastScan, { walked: true, checked: 31, read: 31 });

  // An atomic write: events name the hidden temporary file (never read) and the file renamed over.
  await writeAtomic(path.join(f.dir, 's5.yaml'), svc('s5', 8005));
  await waitForSnapshot(f.source, 's5 on 8005', (s) => port(s, 's5') === 8005);
  t.deepEqual(f.source.lastScan, { walked: false, checked: 1, read: 1 });

  // A write in place, in a subdirectory.
  await fs.writeFile(path.join(f.dir, 'sub/x.yaml'), svc('x', 8100));
  await waitForSnapshot(f.source, 'x on 8100', (s) => port(s, 'x') === 8100);
  t.deepEqual(f.source.lastScan, { walked: false, checked: 1, read: 1 });

  // A deletion: the named file is gone, its objects go with it.
  await fs.rm(path.join(f.dir, 's7.yaml'));
  await waitForSnapshot(f.source, 's7 gone', (s) => port(s, 's7') === undefined);
  t.deepEqual(f.source.lastScan, { walked: false, checked: 1, read: 0 });
  t.is(f.source.current().services.length, 30);

  // An explicit rescan walks the whole tree and stats every file.
  await f.source.rescan();
  t.like(f.source.lastScan, { walked: true, checked: 30 });
});

test('events naming a directory make the scan walk: a directory moved in, a ConfigMap-style ..data swap', async (t) => {
  const f = await startSource({ 'a.yaml': svc('a') });
  t.teardown(() => cleanup(f));
  // A directory made elsewhere and moved in: its files raise no event of their own, only its rename does.
  const outside = await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-outside-'));
  t.teardown(() => fs.rm(outside, { recursive: true, force: true }));
  await fs.mkdir(path.join(outside, 'team'));
  await fs.writeFile(path.join(outside, 'team', 'b.yaml'), svc('b'));
  await fs.rename(path.join(outside, 'team'), path.join(f.dir, 'team'));
  await waitForSnapshot(f.source, 'b from a moved-in directory', (s) => serviceNames(s).includes('default/b'));
  t.true(f.source.lastScan?.walked);

  // What the kubelet does to a mounted ConfigMap: the visible file is a symlink through `..data`, and an
  // update writes a new hidden directory and swaps `..data` to it. No event names the visible file.
  const cm = path.join(f.dir, 'cm');
  await fs.mkdir(path.join(cm, '..v1'), { recursive: true });
  await fs.writeFile(path.join(cm, '..v1', 'c.yaml'), svc('c', 8080));
  await fs.symlink('..v1', path.join(cm, '..data'));
  await fs.symlink('..data/c.yaml', path.join(cm, 'c.yaml'));
  const port = (s: MeshSnapshot) => s.index.servicesByFqdn.get('c.default.svc.cluster.local')?.ports[0]?.port;
  await waitForSnapshot(f.source, 'c on 8080', (s) => port(s) === 8080);
  await fs.mkdir(path.join(cm, '..v2'));
  await fs.writeFile(path.join(cm, '..v2', 'c.yaml'), svc('c', 9090));
  await fs.symlink('..v2', path.join(cm, '..data_tmp'));
  await fs.rename(path.join(cm, '..data_tmp'), path.join(cm, '..data'));
  await fs.rm(path.join(cm, '..v1'), { recursive: true });
  await waitForSnapshot(f.source, 'c on 9090 after the ..data swap', (s) => port(s) === 9090);
  t.deepEqual(serviceNames(f.source.current()), ['default/a', 'default/b', 'default/c']);
});

test('a directory removed and made again in one burst is watched again', async (t) => {
  const f = await startSource({ 'a.yaml': svc('a'), 'sub/x.yaml': svc('x', 8001) });
  t.teardown(() => cleanup(f));
  const port = (s: MeshSnapshot) => s.index.servicesByFqdn.get('x.default.svc.cluster.local')?.ports[0]?.port;
  // The old directory's watcher dies with it (it reports the deletion as a rename of its own name, and no
  // error); the new directory needs a watcher of its own.
  await fs.rm(path.join(f.dir, 'sub'), { recursive: true });
  await fs.mkdir(path.join(f.dir, 'sub'));
  await fs.writeFile(path.join(f.dir, 'sub/x.yaml'), svc('x', 8002));
  await waitForSnapshot(f.source, 'x on 8002', (s) => port(s) === 8002);
  // A later edit in the new directory is seen through that watcher.
  await writeAtomic(path.join(f.dir, 'sub/x.yaml'), svc('x', 8003));
  await waitForSnapshot(f.source, 'x on 8003', (s) => port(s) === 8003);
  t.pass();
});

test('a burst naming more paths than maxNamedPaths is read by a walk', async (t) => {
  // A rename quiet time long enough that the five atomic writes fall in one burst, whatever the load.
  const f = await startSource(
    { 'a.yaml': svc('a') },
    { debounceMs: 600_000, renameDebounceMs: 1_500, maxNamedPaths: 3 },
  );
  t.teardown(() => cleanup(f));
  for (const name of ['b', 'c', 'd', 'e', 'g']) await writeAtomic(path.join(f.dir, `${name}.yaml`), svc(name));
  await waitForSnapshot(f.source, 'five new files', (s) => serviceNames(s).length === 6, 30_000);
  t.like(f.source.lastScan, { walked: true, checked: 6 });
});

test('random watched edits, directories included: the source ends equal to a fresh read every time', async (t) => {
  // Named-path scans and walks mixed: files written atomically and in place, deleted and moved, directories
  // made and removed (with their files). After each step the running source must come to hold what a fresh
  // read of the directory finds.
  const random = prng(2207);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const f = await startSource({ 'a.yaml': svc('s1'), 'b/c.yaml': svc('s2') });
  t.teardown(() => cleanup(f));
  const paths = ['a.yaml', 'b.yaml', 'b/c.yaml', 'b/d.yml', 'e/f.yaml', 'e/g/h.json', 'b/.hidden.yaml'];
  const dirs = ['b', 'e', 'e/g'];
  const names = ['s1', 's2', 's3', 's4', 's5', 's6'];
  const view = (source: FileSource) =>
    JSON.stringify({
      objects: source.store.list().map((o) => [o.kind, o.namespace, o.name, o.origin, o.object]),
      problems: source.store.problems().map((p) => p.message),
    });
  let named = 0;
  for (let step = 0; step < 40; step++) {
    const file = path.join(f.dir, pick(paths));
    const text = Array.from({ length: 1 + Math.floor(random() * 2) }, () =>
      svc(pick(names), 80 + Math.floor(random() * 3)),
    ).join('---\n');
    const action = random();
    if (action < 0.35) {
      await fs.mkdir(path.dirname(file), { recursive: true });
      await writeAtomic(file, text);
    } else if (action < 0.55) {
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(file, text);
    } else if (action < 0.7) {
      await fs.rm(file, { force: true });
    } else if (action < 0.85) {
      const to = path.join(f.dir, pick(paths));
      await fs.mkdir(path.dirname(to), { recursive: true });
      await fs.rename(file, to).catch(() => undefined);
    } else {
      await fs.rm(path.join(f.dir, pick(dirs)), { recursive: true, force: true });
    }
    const fresh = new FileSource({ directory: f.dir, validate: validateRoutingResource, formatIssue });
    await fresh.start();
    const want = view(fresh);
    await fresh.stop();
    const deadline = Date.now() + 15_000;
    while (view(f.source) !== want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    t.is(view(f.source), want, `step ${step}: the source differs from a fresh read`);
    if (f.source.lastScan?.walked === false) named++;
  }
  t.true(named > 0, 'some steps were read from the named paths alone');
});

test('start fails on a directory that does not exist', async (t) => {
  const source = new FileSource({
    directory: path.join(os.tmpdir(), 'trellis-no-such-dir-x9'),
    validate: validateRoutingResource,
    formatIssue,
  });
  await t.throwsAsync(source.start(), { code: 'ENOENT' });
  t.false(source.ready());
});

test('unchanged old files are not read again, and an in-place edit of the same size right after a read is still seen', async (t) => {
  const f = await startSource({ 'a.yaml': svc('a', 8080), 'old.yaml': svc('old') });
  t.teardown(() => cleanup(f));
  // old.yaml: last modified long ago. A rescan stats it and keeps its objects without reading it.
  const past = new Date(Date.now() - 60_000);
  await fs.utimes(path.join(f.dir, 'old.yaml'), past, past);
  await f.source.rescan();
  await f.source.rescan();
  t.true(serviceNames(f.source.current()).includes('default/old'));

  // a.yaml rewritten in place with text of the same length, within the timestamp tick of the last read:
  // the stamp may be equal, but a file modified so recently is always read again.
  const edited = svc('a', 9090);
  t.is(edited.length, svc('a', 8080).length);
  await fs.writeFile(path.join(f.dir, 'a.yaml'), edited);
  await f.source.rescan();
  t.is(f.source.current().index.servicesByFqdn.get('a.default.svc.cluster.local')?.ports[0]?.port, 9090);
  t.true(serviceNames(f.source.current()).includes('default/old'));
});
