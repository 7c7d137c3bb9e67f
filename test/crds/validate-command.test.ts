// `trellis validate` as a real process: exit codes, output lines, stdin, directories, cross-object checks.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import test from 'ava';
import { runValidate } from '../../crds/validate-command.js';
import { repoRoot } from '../helpers/peer-paths.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function trellis(args: readonly string[], input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'control-plane/main.ts', ...args], {
      cwd: repoRoot,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

const lines = (s: string): string[] => s.split('\n').filter((l) => l !== '');

/** The lines the fixtures of a folder expect, with their file names, in file order. */
function expectedLines(dir: string): string[] {
  const rel = `test/fixtures/${dir}`;
  return fs
    .readdirSync(path.join(repoRoot, rel))
    .sort()
    .flatMap((f) =>
      fs
        .readFileSync(path.join(repoRoot, rel, f), 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('# expect: '))
        .map((l) => `${rel}/${f}${l.slice('# expect: '.length)}`),
    );
}

function tempDir(t: { teardown: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-validate-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const VS_REVIEWS = `apiVersion: networking.trellis.dev/v1alpha1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
    - route:
        - destination: {host: reviews, subset: v1}
          weight: 90
        - destination: {host: reviews, subset: v2}
          weight: 10
`;

test('the valid bookinfo mesh: exit 0, nothing on stdout, a summary on stderr', async (t) => {
  const r = await trellis(['validate', '-f', 'test/fixtures/valid']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, '');
  t.is(lines(r.stderr).at(-1), '16 resources in 8 files (23 documents): 0 errors, 0 warnings');
});

test('the invalid examples: exit 1, every error listed, sorted by file and document', async (t) => {
  const r = await trellis(['validate', '-f', 'test/fixtures/invalid']);
  t.is(r.code, 1, r.stderr);
  const out = lines(r.stdout);
  // Read together, the examples also collide with each other (most define bookinfo/reviews): those lines
  // come on top of each file's own, and the cross-object lines of a file change (a duplicate is left out
  // of the cross-object checks; its first definition is in another file). The rest is exactly as expected.
  const own = expectedLines('invalid').filter((l) => !/also defined in|no DestinationRule for/.test(l));
  t.deepEqual(
    out.filter((l) => own.includes(l)),
    own,
  );
  const extra = out.filter((l) => !own.includes(l));
  t.true(extra.length > 0);
  for (const l of extra) {
    t.regex(
      l,
      /: metadata\.name: also defined in test\/fixtures\/invalid\/|conflicts with older|no DestinationRule for/,
    );
  }
  const key = (l: string): [string, number] => {
    const m = /^(.*?)#(\d+): /.exec(l);
    return [m?.[1] ?? '', Number(m?.[2] ?? 0)];
  };
  for (let i = 1; i < out.length; i++) {
    const [fa, da] = key(out[i - 1] ?? '');
    const [fb, db] = key(out[i] ?? '');
    t.true(fa < fb || (fa === fb && da <= db), `${out[i - 1]} before ${out[i]}`);
  }
});

test('warnings alone: exit 0, the warnings printed', async (t) => {
  const files = ['conflicting-virtualservices.yaml', 'merged-destinationrules.yaml'];
  const r = await trellis(['validate', ...files.flatMap((f) => ['--filename', `test/fixtures/warnings/${f}`])]);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(
    lines(r.stdout),
    expectedLines('warnings').filter((l) => files.some((f) => l.startsWith(`test/fixtures/warnings/${f}`))),
  );
});

test('stdin with -, several paths, one file twice', async (t) => {
  const input = fs.readFileSync(path.join(repoRoot, 'test/fixtures/invalid/weight-negative.yaml'), 'utf8');
  const r = await trellis(
    ['validate', '-f', '-', 'test/fixtures/valid/ratings.yaml', '-f', 'test/fixtures/valid/ratings.yaml'],
    input,
  );
  t.is(r.code, 1, r.stderr);
  t.deepEqual(lines(r.stdout), [
    '<stdin>#1: VirtualService bookinfo/reviews: spec.http[0].route[1].weight: must be >= 0',
  ]);
  t.regex(r.stderr, /3 resources in 2 files \(3 documents\): 1 error, 0 warnings/);
  t.regex(r.stderr, /note: no Service in the input, so hosts were not checked against Services/);
});

test('directories are searched recursively for .yaml, .yml and .json; other files and hidden folders are skipped', async (t) => {
  const dir = tempDir(t);
  fs.mkdirSync(path.join(dir, 'nested/deeper'), { recursive: true });
  fs.mkdirSync(path.join(dir, '.hidden'));
  fs.writeFileSync(path.join(dir, 'nested/deeper/vs.yml'), VS_REVIEWS.replace('weight: 10', 'weight: -1'));
  fs.writeFileSync(
    path.join(dir, 'nested/dr.json'),
    JSON.stringify({
      apiVersion: 'networking.trellis.dev/v1alpha1',
      kind: 'DestinationRule',
      metadata: { name: 'reviews' },
      spec: { host: 'reviews', subsets: [{ name: 'v1' }, { name: 'v2' }] },
    }),
  );
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'not: [yaml');
  fs.writeFileSync(path.join(dir, '.hidden/broken.yaml'), 'not: [yaml');
  const r = await trellis(['validate', '-f', dir]);
  t.is(r.code, 1, r.stderr);
  t.deepEqual(lines(r.stdout), [
    `${dir}/nested/deeper/vs.yml#1: VirtualService default/reviews: spec.http[0].route[1].weight: must be >= 0`,
  ]);
  t.regex(r.stderr, /2 resources in 2 files/);
});

test('cross-object checks: Services and subsets read from other documents and files', async (t) => {
  const dir = tempDir(t);
  fs.writeFileSync(
    path.join(dir, 'services.yaml'),
    `apiVersion: v1
kind: Namespace
metadata: {name: default}
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec: {ports: [{port: 9080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: reviews-1, labels: {kubernetes.io/service-name: reviews}}
addressType: IPv4
endpoints: []
`,
  );
  fs.writeFileSync(
    path.join(dir, 'vs.yaml'),
    `${VS_REVIEWS}        - destination: {host: ratings}\n          weight: 0\n`,
  );
  fs.writeFileSync(
    path.join(dir, 'dr.yaml'),
    `apiVersion: networking.trellis.dev/v1alpha1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews.default.svc.cluster.local
  subsets: [{name: v1}]
`,
  );
  const r = await trellis(['validate', '-f', path.join(dir, 'vs.yaml'), dir]);
  t.is(r.code, 1, r.stderr);
  t.deepEqual(lines(r.stdout), [
    `${dir}/vs.yaml#1: VirtualService default/reviews: spec.http[0].route[1].destination.subset: no DestinationRule for reviews.default.svc.cluster.local defines subset v2`,
    `${dir}/vs.yaml#1: warning: VirtualService default/reviews: spec.http[0].route[2].destination.host: no Service ratings.default.svc.cluster.local (requests to it fail)`,
  ]);
  t.notRegex(r.stderr, /note: no Service/);
});

test('ServiceEntries are validated, and their hosts count as services for VirtualService hosts and destinations', async (t) => {
  const input = `apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec: {ports: [{port: 9080}]}
---
apiVersion: networking.trellis.dev/v1alpha1
kind: ServiceEntry
metadata: {name: httpbin, namespace: shop}
spec:
  hosts: [httpbin.org, api.example.com]
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.trellis.dev/v1alpha1
kind: ServiceEntry
metadata: {name: vms, namespace: shop}
spec:
  hosts: [vms.example.com]
  resolution: STATIC
  ports: [{number: 80, name: http}]
  endpoints: [{address: vm1.example.com}]
---
apiVersion: networking.trellis.dev/v1alpha1
kind: VirtualService
metadata: {name: api, namespace: shop}
spec:
  hosts: [api.example.com]
  tls:
    - match: [{sniHosts: [api.example.com]}]
      route: [{destination: {host: httpbin.org}, weight: 100}, {destination: {host: gone.example.com}, weight: 0}]
`;
  const r = await trellis(['validate', '-f', '-'], input);
  t.is(r.code, 1, r.stderr);
  t.deepEqual(lines(r.stdout), [
    '<stdin>#3: ServiceEntry shop/vms: spec.endpoints[0].address: must be an IP address when resolution is STATIC',
    '<stdin>#4: warning: VirtualService shop/api: spec.tls[0].route[1].destination.host: no Service gone.example.com (requests to it fail)',
  ]);
  t.regex(r.stderr, /3 resources in 1 file \(4 documents\): 1 error, 1 warning/);
});

test('usage errors and unreadable files exit 2', async (t) => {
  const missing = await trellis(['validate']);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /required option '-f, --filename <paths\.\.\.>' not specified/);
  const unknown = await trellis(['validate', '-f', 'x.yaml', '--strict']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /unknown option '--strict'/);
  const unreadable = await trellis([
    'validate',
    '-f',
    'test/fixtures/nope.yaml',
    'test/fixtures/invalid/port-zero.yaml',
  ]);
  t.is(unreadable.code, 2);
  t.regex(unreadable.stderr, /trellis validate: cannot read test\/fixtures\/nope\.yaml: no such file or directory/);
  // The readable file is still validated and reported.
  t.deepEqual(lines(unreadable.stdout), [
    'test/fixtures/invalid/port-zero.yaml#1: VirtualService bookinfo/reviews: spec.http[0].route[0].destination.port.number: must be >= 1',
  ]);
});

test('help exits 0', async (t) => {
  const r = await trellis(['validate', '--help']);
  t.is(r.code, 0);
  t.regex(r.stdout, /Usage: trellis validate \[options\]/);
});

// In process: progress appears on stderr only when a run takes longer than the threshold.
async function runInProcess(progressAfterMs: number, delayMs: number): Promise<{ code: number; stderr: string }> {
  const stdin = new PassThrough();
  setTimeout(() => stdin.end(VS_REVIEWS), delayMs);
  let stderr = '';
  const sink = (collect: boolean) =>
    new (class extends PassThrough {
      override write(chunk: unknown): boolean {
        if (collect) stderr += String(chunk);
        return true;
      }
    })();
  const code = await runValidate(['-'], {
    stdin: stdin as Readable,
    stdout: sink(false),
    stderr: sink(true),
    progressAfterMs,
  });
  return { code, stderr };
}

test('progress is shown on stderr for long runs only', async (t) => {
  const slow = await runInProcess(50, 400);
  t.regex(slow.stderr, /validating: 0\/1 files\n/);
  const fast = await runInProcess(1000, 0);
  t.notRegex(fast.stderr, /validating/);
  t.is(fast.code, 1); // subsets v1 and v2 are defined nowhere
});
