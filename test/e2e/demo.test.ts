// `npm start` (examples/demo/): the whole mesh as local processes — control plane with the CA, one real
// `trellis agent` per Pod, the example apps of examples/kubernetes/apps proxyless on STRICT mutual TLS —
// must split as its YAML says, carry only SPIFFE identities, retry where the demo injects failures, follow
// edits of its YAML while it runs, and leave no process behind when stopped. Each test runs one demo;
// they run one after the other (each is a dozen processes on a small machine).
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import YAML from 'yaml';
import { defaultConfigDir, startDemo, type RunningDemo } from '../../examples/demo/run.js';
import type { DemoSummary } from '../../examples/demo/view.js';
import { requirePeers, startJaeger } from '../helpers/cluster.js';
import { repoRoot } from '../helpers/peer-paths.js';
import { waitFor, within } from '../helpers/wait.js';

interface Weighted {
  readonly destination: { readonly subset?: string };
  readonly weight?: number;
}

/** The reviews split of a demo YAML directory: subset → weight (percent). */
async function reviewsWeights(dir: string): Promise<Record<string, number>> {
  const docs = YAML.parseAllDocuments(await fs.readFile(path.join(dir, 'reviews.yaml'), 'utf8')).map(
    (d) => d.toJS() as { kind: string; spec: { http: { route: Weighted[] }[] } },
  );
  const vs = docs.find((d) => d.kind === 'VirtualService')!;
  return Object.fromEntries(vs.spec.http[0]!.route.map((r) => [r.destination.subset!, r.weight ?? 100]));
}

/** Processes (any user's we can read) whose environment holds TRELLIS_DEMO_RUN=<id>. */
async function processesOfRun(runId: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await fs.readdir('/proc')).filter((e) => /^\d+$/.test(e))) {
    const environ = await fs.readFile(`/proc/${pid}/environ`, 'latin1').catch(() => '');
    if (environ.split('\0').includes(`TRELLIS_DEMO_RUN=${runId}`)) {
      const cmd = await fs.readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => '');
      found.push(`${pid}: ${cmd.split('\0').join(' ').slice(0, 160)}`);
    }
  }
  return found;
}

interface Started {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exited: Promise<number | null>;
  /** Resolves when a stderr line matches. */
  line(match: RegExp, timeoutMs: number): Promise<string>;
}

/** `npm start -- <args>` in a process group of its own, as a terminal runs a foreground job. */
function npmStart(args: readonly string[], env: Record<string, string>): Started {
  const child = spawn('npm', ['start', '--silent', '--', ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  let err = '';
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  readline.createInterface({ input: child.stderr! }).on('line', (l) => {
    err += l + '\n';
    lines.push(l);
    for (const w of [...waiters]) w();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    line: (match, timeoutMs) =>
      within(
        `a line matching ${match} from the demo (stderr so far:\n${err.slice(-3000)})`,
        new Promise<string>((resolve) => {
          const check = (): void => {
            const l = lines.find((x) => match.test(x));
            if (l) {
              waiters.delete(check);
              resolve(l);
            }
          };
          waiters.add(check);
          check();
        }),
        timeoutMs,
      ),
  };
}

const killGroup = (child: ChildProcess): void => {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // gone
  }
};

test.serial(
  'npm start -- --duration 20 --json: the split of its YAML, SPIFFE peers only, retries save every call',
  async (t) => {
    const runId = `test-json-${process.pid}-${Date.now()}`;
    const demo = npmStart(['--duration', '20', '--json'], { TRELLIS_DEMO_RUN: runId });
    t.teardown(() => killGroup(demo.child));
    const code = await within('the demo to finish', demo.exited, 240_000);
    t.is(code, 0, demo.stderr());
    const summary = JSON.parse(demo.stdout()) as DemoSummary;
    t.log(
      `${summary.calls} calls in ${summary.durationSeconds} s; reviews p50 ${summary.services.reviews?.p50Ms} ms, p99 ${summary.services.reviews?.p99Ms} ms; ratings retries ${summary.services.ratings?.retries}`,
    );
    t.true(summary.calls >= 200, `only ${summary.calls} calls`);

    // The split: every subset within 4.5 standard deviations (plus a point) of its weight.
    const weights = await reviewsWeights(defaultConfigDir);
    const reviews = summary.services.reviews!;
    const answered = reviews.requests - reviews.failures;
    for (const [subset, weight] of Object.entries(weights)) {
      const p = weight / 100;
      const share = reviews.subsets[subset]?.share ?? 0;
      const tolerance = 4.5 * Math.sqrt((p * (1 - p)) / answered) + 0.01;
      t.log(
        `reviews ${subset}: ${(share * 100).toFixed(1)}% for a weight of ${weight} (±${(tolerance * 100).toFixed(1)})`,
      );
      t.true(Math.abs(share - p) <= tolerance, `reviews ${subset}: ${share} vs ${p}`);
    }

    // mTLS: every server saw only SPIFFE identities, each the one its caller's ServiceAccount has.
    const expectedCaller: Record<string, string> = {
      reviews: 'spiffe://cluster.local/ns/demo/sa/frontend',
      ratings: 'spiffe://cluster.local/ns/demo/sa/reviews',
    };
    t.deepEqual(Object.keys(summary.servers).sort(), ['ratings-v1-0', 'reviews-v1-0', 'reviews-v2-0', 'reviews-v3-0']);
    for (const [pod, server] of Object.entries(summary.servers)) {
      t.deepEqual(
        Object.keys(server.peers),
        [expectedCaller[server.app]],
        `${pod} saw ${JSON.stringify(server.peers)}`,
      );
    }
    for (const w of summary.workloads) {
      t.regex(w.spiffeId, /^spiffe:\/\/cluster\.local\/ns\/demo\/sa\/(frontend|reviews|ratings)$/);
      t.true(
        w.certificate !== null && Date.parse(w.certificate.notAfter) > Date.now(),
        `${w.pod} has a valid certificate`,
      );
    }

    // ratings fails every 4th call it gets (workloads.yaml); the retry policy (ratings.yaml: 3 attempts on
    // UNAVAILABLE) retries about one call in three and saves every one: the load is sequential, so a retry
    // never meets another injected failure. No call failed anywhere.
    const ratings = summary.services.ratings!;
    t.true(
      ratings.retries >= ratings.requests / 5,
      `ratings: ${ratings.retries} retries for ${ratings.requests} calls`,
    );
    t.is(ratings.failures, 0, JSON.stringify(ratings.failureCodes));
    t.is(reviews.failures, 0, JSON.stringify(reviews.failureCodes));
    t.is(summary.loadErrors, 0);
    t.deepEqual(await processesOfRun(runId), []);
  },
);

test.serial(
  'editing a copy of the demo YAML while it runs: the split moves, retries off lets failures through, a fault injects them',
  async (t) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-demo-test-'));
    t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
    for (const f of await fs.readdir(defaultConfigDir)) {
      if (f.endsWith('.yaml')) await fs.copyFile(path.join(defaultConfigDir, f), path.join(dir, f));
    }
    // The run directory (logs) is kept when the test fails.
    const runDir = await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-demo-run-'));
    const demo: RunningDemo = await startDemo({ configDir: dir, runDir, rate: 100 });
    t.teardown(async () => {
      await demo.stop();
      if (t.passed) await fs.rm(runDir, { recursive: true, force: true });
      else t.log(`the demo's logs: ${demo.logDir}`);
    });
    const running = demo;
    const count = (service: string, subset: string): number =>
      running.stats.total.services.get(service)?.subsets.get(subset)?.requests ?? 0;

    // Edit the file as an editor does (write a temp file, rename it over): everything to v3.
    const write = async (name: string, edit: (text: string) => string): Promise<void> => {
      const file = path.join(dir, name);
      const before = await fs.readFile(file, 'utf8');
      const text = edit(before);
      t.not(text, before, `the edit of ${name} changes it`);
      await fs.writeFile(`${file}.tmp~`, text);
      await fs.rename(`${file}.tmp~`, file);
    };
    await waitFor('100 calls before the edit', () => count('reviews', 'v1') + count('reviews', 'v2') >= 100, 60_000);
    await write('reviews.yaml', (text) =>
      text.replace('weight: 60', 'weight: 0').replace('weight: 30', 'weight: 0').replace('weight: 10', 'weight: 100'),
    );
    t.deepEqual(await reviewsWeights(dir), { v1: 0, v2: 0, v3: 100 });
    const edited = Date.now();
    // Once the push has arrived, a run of 100 calls all reach v3.
    await waitFor(
      'a run of 100 calls all answered by reviews v3',
      async () => {
        const before = [count('reviews', 'v1'), count('reviews', 'v2'), count('reviews', 'v3')];
        await waitFor(
          '100 more calls',
          () =>
            count('reviews', 'v3') - before[2]! >= 100 ||
            count('reviews', 'v1') > before[0]! ||
            count('reviews', 'v2') > before[1]!,
          30_000,
        );
        return count('reviews', 'v1') === before[0] && count('reviews', 'v2') === before[1];
      },
      60_000,
    );
    t.log(`the split followed the edit within ${((Date.now() - edited) / 1000).toFixed(1)} s (including 100 calls)`);

    // Retries off for ratings (`attempts: 0`): the failures it injects reach reviews, which answers without
    // a rating (so the frontend sees no failure, and its own route does not retry).
    const ratingsFailures = (): number => running.stats.total.services.get('ratings')?.all.failures ?? 0;
    t.is(ratingsFailures(), 0);
    await write('ratings.yaml', (text) => text.replace(/^( +attempts:) 3$/m, '$1 0'));
    await waitFor('ratings failures once its retries are off', () => ratingsFailures() >= 10, 60_000);
    t.deepEqual([...running.stats.total.services.get('ratings')!.all.codes.keys()], ['UNAVAILABLE']);
    t.is(running.stats.total.services.get('reviews')!.all.failures, 0);

    // Retries back: a run of 100 calls to ratings without a failure.
    await write('ratings.yaml', (text) => text.replace(/^( +attempts:) 0$/m, '$1 3'));
    const ratingsCalls = (): number => running.stats.total.services.get('ratings')?.all.requests ?? 0;
    await waitFor(
      'a run of 100 ratings calls without a failure',
      async () => {
        const [calls, failures] = [ratingsCalls(), ratingsFailures()];
        await waitFor('100 more calls', () => ratingsCalls() >= calls + 100, 30_000);
        return ratingsFailures() === failures;
      },
      60_000,
    );
    // The fault edit of docs/demo.md: the retries block replaced by a 50% abort. Injected faults are not
    // retried (as in Envoy), so about half the calls to ratings fail from now on.
    await write('ratings.yaml', (text) =>
      text.replace(
        /^ +retries:\n +attempts: 3\n/m,
        '      fault:\n        abort:\n          percentage: { value: 50 }\n          grpcStatus: UNAVAILABLE\n',
      ),
    );
    const before = ratingsFailures();
    await waitFor('failures from the injected fault', () => ratingsFailures() >= before + 20, 60_000);
    t.deepEqual([...running.stats.total.services.get('ratings')!.all.codes.keys()], ['UNAVAILABLE']);
    t.is(running.stats.total.services.get('reviews')!.all.failures, 0);
    t.deepEqual(running.controlPlane.problems(), []);
    await demo.stop();
    t.deepEqual(await processesOfRun(demo.runId), []);
  },
);

test.serial('Ctrl-C on npm start (SIGINT to its process group) leaves no process behind', async (t) => {
  const runId = `test-ctrl-c-${process.pid}-${Date.now()}`;
  const demo = npmStart([], { TRELLIS_DEMO_RUN: runId });
  t.teardown(() => killGroup(demo.child));
  await demo.line(/^the mesh is up/, 240_000);
  const before = await processesOfRun(runId);
  // npm, its shell (or not: dash execs), the demo, 1 control plane, 5 agents, 5 apps.
  t.true(before.length >= 12, before.join('\n'));
  process.kill(-demo.child.pid!, 'SIGINT');
  await within('the demo to exit after Ctrl-C', demo.exited, 60_000);
  // npm ends by re-raising the signal on itself once its child is done: exit code null, signal SIGINT.
  t.true(demo.child.exitCode === 0 || demo.child.signalCode === 'SIGINT', demo.stderr());
  t.deepEqual(await processesOfRun(runId), []);
  t.regex(demo.stderr(), /every process ended/);
});

test.serial('SIGTERM to the demo process alone stops every process it started', async (t) => {
  const runId = `test-sigterm-${process.pid}-${Date.now()}`;
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/demo/main.ts', '--json'], {
    cwd: repoRoot,
    env: { ...process.env, TRELLIS_DEMO_RUN: runId },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  t.teardown(() => killGroup(child));
  let stderr = '';
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const up = new Promise<void>((resolve) =>
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/the mesh is up/.test(stderr)) resolve();
    }),
  );
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await within('the mesh to come up', up, 240_000);
  t.true((await processesOfRun(runId)).length >= 11);
  child.kill('SIGTERM');
  t.is(await within('the demo to exit after SIGTERM', exited, 60_000), 0, stderr);
  t.deepEqual(await processesOfRun(runId), []);
  // --json without --duration: the summary comes at the stop.
  t.is((JSON.parse(stdout) as DemoSummary).workloads.length, 5);
});

interface JaegerTrace {
  readonly spans: { readonly operationName: string; readonly processID: string }[];
  readonly processes: Record<string, { readonly serviceName: string }>;
}

test.serial(
  'npm start -- --jaeger URL: one call is one trace frontend → reviews → ratings in the real Jaeger',
  async (t) => {
    if (!requirePeers(t, { jaeger: true })) return;
    const jaeger = await startJaeger();
    t.teardown(() => jaeger.stop());
    const endpoint = `http://127.0.0.1:${jaeger.otlpGrpcPort}`;
    const runId = `test-jaeger-${process.pid}-${Date.now()}`;
    const demo = npmStart(['--duration', '10', '--json', '--jaeger', endpoint], { TRELLIS_DEMO_RUN: runId });
    t.teardown(() => killGroup(demo.child));
    t.is(await within('the demo to finish', demo.exited, 240_000), 0, demo.stderr());
    const summary = JSON.parse(demo.stdout()) as DemoSummary;
    t.is(summary.tracing, endpoint);
    const trace = await waitFor(
      'a trace with spans of frontend, reviews and ratings in Jaeger',
      async () => {
        const res = await fetch(`${jaeger.queryUrl}/api/traces?service=ratings&lookback=1h&limit=50`);
        if (!res.ok) return undefined;
        const data = ((await res.json()) as { data: JaegerTrace[] | null }).data ?? [];
        return data.find((tr) => {
          const services = new Set(tr.spans.map((s) => tr.processes[s.processID]?.serviceName));
          return services.has('frontend') && services.has('reviews') && services.has('ratings');
        });
      },
      60_000,
    );
    const services = await (await fetch(`${jaeger.queryUrl}/api/services`)).json();
    t.log(`services in Jaeger: ${JSON.stringify(services)}`);
    t.log(trace.spans.map((s) => `${trace.processes[s.processID]?.serviceName}:${s.operationName}`).join(', '));
  },
);
