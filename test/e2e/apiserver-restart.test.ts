// Fail static across restarts of what the CA depends on (design.md §5.4), with real processes: a real
// kube-apiserver (tools/peers), `trellis control-plane --kubeconfig` with the CA on (TokenReview, the CA in
// the Secret trellis-system/trellis-ca) and `trellis agent`s with 120-second certificates.
//
// 1. The API server goes away across a renewal point of agent A: A keeps a valid certificate throughout
//    and renews (a renewal by certificate needs no TokenReview). Agent B, started while the API server is
//    away, is told UNAVAILABLE (TokenReview cannot be asked) and retries; it gets its first certificate
//    once the API server is back.
// 2. The control plane (the CA) is killed with SIGKILL across a renewal point of A and started again: A keeps
//    serving its certificate, its renewal fails while the CA is away, and it renews once the CA is back.
//
// "Never without a certificate": every renewal of an agent is logged before its previous certificate's
// notAfter, and no agent ever logs that its certificate EXPIRED.
import anyTest from 'ava';
import { CoreV1Api } from '@kubernetes/client-node';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePorts } from '../helpers/mesh-e2e.js';
import { useCluster, type Cluster } from '../helpers/cluster.js';
import { startTrellis, type LogLine, type TrellisProcess } from '../helpers/process.js';
import { installCrds } from '../kube/kube-helpers.js';

const kube = useCluster(anyTest);

/** Renewal at 40–50% of it, 48–60 s: a CA restart across a renewal point has 60 s or more before expiry. */
const TTL = '120s';
const FIRST = 'certificates: got the first certificate';
const RENEWED = 'certificates: renewed';
const NO_FIRST = 'certificates: could not get the first certificate';
const FAILED = 'certificates: renewal failed; the current certificate is still served';
const EXPIRED = 'certificates: renewal failed and the current certificate has EXPIRED';

interface Agent {
  readonly name: string;
  readonly proc: TrellisProcess;
}

/** The agent's certificates in order: each issue (first or renewal) with its log time and notAfter. */
function issues(agent: Agent): { at: number; notAfter: number; via: string }[] {
  return agent.proc.logs
    .filter((l) => l.msg === FIRST || l.msg === RENEWED)
    .map((l) => ({ at: Number(l.time), notAfter: Date.parse(String(l.notAfter)), via: String(l.via) }));
}

/** Resolves with the first log line of `agent` after index `from` that matches, or rejects at the deadline. */
function nextLog(agent: Agent, from: number, match: (l: LogLine) => boolean, timeoutMs: number): Promise<LogLine> {
  return agent.proc.waitForLog((l) => agent.proc.logs.indexOf(l) >= from && match(l), timeoutMs);
}

function neverWithout(
  t: { true(v: boolean, m?: string): void; is(a: unknown, b: unknown, m?: string): void },
  agent: Agent,
): void {
  const list = issues(agent);
  for (let i = 1; i < list.length; i++) {
    const late = list[i]!.at - list[i - 1]!.notAfter;
    t.true(late < 0, `${agent.name}: certificate ${i} came ${late} ms after ${i - 1} expired`);
  }
  t.is(agent.proc.logs.filter((l) => l.msg === EXPIRED).length, 0, `${agent.name} ran on an expired certificate`);
}

async function rootCert(cluster: Cluster, namespace: string, file: string): Promise<void> {
  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const cm = await core.readNamespacedConfigMap({ name: 'trellis-ca-root-cert', namespace });
      const pem = cm.data?.['root-cert.pem'];
      if (pem) return await fs.writeFile(file, pem);
    } catch {
      // not published yet
    }
    if (Date.now() > deadline) throw new Error(`no ConfigMap trellis-ca-root-cert in ${namespace} within 60 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

kube.serial(
  'API server restart and CA kill -9 across renewals: agents never lose their certificate',
  async (t, cluster) => {
    t.timeout(600_000);
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-apiserver-restart-'));
    const procs: TrellisProcess[] = [];
    t.teardown(async () => {
      for (const p of procs.reverse()) await p.stop();
      await fs.rm(tmp, { recursive: true, force: true });
    });

    await installCrds(cluster);
    await cluster.kubectl(['apply', '-f', '-'], {
      input: 'apiVersion: v1\nkind: Namespace\nmetadata: { name: trellis-system }\n',
    });
    const [securePort] = (await freePorts(1)) as [number];
    const cpArgs = [
      'control-plane',
      '--kubeconfig',
      cluster.kubeconfigPath,
      '--state-dir',
      path.join(tmp, 'state'),
      '--secure-port',
      String(securePort),
      '--monitoring-port',
      '0',
      '--webhook-port',
      '0',
    ];
    const startControlPlane = async (): Promise<TrellisProcess> => {
      const proc = startTrellis(cpArgs);
      procs.push(proc);
      await proc.waitForLog((l) => l.msg === 'control plane listening', 120_000);
      return proc;
    };
    const cp = await startControlPlane();

    const ns = await cluster.createNamespace('restart');
    const root = path.join(tmp, 'root-cert.pem');
    await rootCert(cluster, ns, root);
    const tr = await cluster.kubeConfig.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
      name: 'default',
      namespace: ns,
      body: { spec: { audiences: ['trellis-ca'], expirationSeconds: 3600 } },
    });
    const tokenFile = path.join(tmp, 'token');
    await fs.writeFile(tokenFile, tr.status?.token ?? '');

    const startAgent = (name: string): Agent => {
      const proc = startTrellis([
        'agent',
        '--proxy-type',
        'grpc',
        '--control-plane',
        `127.0.0.1:${securePort}`,
        '--root-cert',
        root,
        '--token-file',
        tokenFile,
        '--namespace',
        ns,
        '--service-account',
        'default',
        '--pod-name',
        name,
        '--instance-ips',
        '127.0.0.1',
        '--output-dir',
        path.join(tmp, name),
        '--ttl',
        TTL,
        '--health-host',
        '127.0.0.1',
        '--health-port',
        '0',
      ]);
      procs.push(proc);
      return { name, proc };
    };

    // Agent A: its first certificate by token (TokenReview), then the API server goes away.
    const a = startAgent('agent-a');
    await a.proc.waitForLog((l) => l.msg === FIRST, 120_000);
    t.is(issues(a)[0]!.via, 'token');
    await cluster.stopApiServer();
    const outageFrom = a.proc.logs.length;

    // Agent B starts during the outage: no TokenReview, so no first certificate, UNAVAILABLE, retried.
    const b = startAgent('agent-b');
    const refused = await b.proc.waitForLog((l) => l.msg === NO_FIRST, 120_000);
    t.is(refused.code, 14, `agent B was refused with ${String(refused.code)}, not UNAVAILABLE: ${String(refused.err)}`);

    // A reaches a renewal point while the API server is away, and renews (by certificate).
    const during = await nextLog(a, outageFrom, (l) => l.msg === RENEWED || l.msg === FAILED, 120_000);
    t.is(during.msg, RENEWED, `agent A could not renew while the API server was away: ${String(during.err)}`);
    t.is(during.via, 'certificate');

    await cluster.startApiServer();
    // B gets its first certificate once the API server is back (by token: it has no certificate to show).
    const bFirst = await b.proc.waitForLog((l) => l.msg === FIRST, 120_000);
    t.is(bFirst.via, 'token');

    // The CA (the control plane) killed half a second before a renewal point of A (mid-rotation), and started
    // again at once on the same port. The restart (tens of seconds on a loaded machine) must fit in what is
    // left of the certificate's lifetime: the agent serves its certificate until it expires, not longer.
    let renewAt = Date.parse(String(a.proc.logs.filter((l) => l.msg === RENEWED).pop()?.renewAt));
    if (!(renewAt - Date.now() > 2_000)) {
      const next = await nextLog(a, a.proc.logs.length, (l) => l.msg === RENEWED, 150_000);
      renewAt = Date.parse(String(next.renewAt));
    }
    await new Promise((resolve) => setTimeout(resolve, renewAt - 500 - Date.now())); // a time, not an event
    const beforeKill = a.proc.logs.length;
    cp.child.kill('SIGKILL');
    await cp.exited;
    const restarted = startControlPlane();
    const failed = await nextLog(a, beforeKill, (l) => l.msg === RENEWED || l.msg === FAILED, 120_000);
    t.is(failed.msg, FAILED, 'agent A renewed with no CA running');
    await restarted;
    const afterRestart = await nextLog(a, beforeKill, (l) => l.msg === RENEWED, 120_000);
    t.is(afterRestart.msg, RENEWED);

    for (const agent of [a, b]) neverWithout(t, agent);
    t.log(
      `agent A: ${issues(a).length} certificates (${issues(a)
        .map((i) => i.via)
        .join(
          ', ',
        )}); agent B: first certificate after ${(Number(bFirst.time) - Number(refused.time)) / 1000} s of refusals`,
    );
  },
);
