// `npm run bench -- inject`: admission latency of the /inject webhook through HTTPS (issue 10), for a
// typical pod and for a pod with 1,500 environment variables. The webhook server (control-plane/webhook/
// server.ts with injector/admission.ts) listens on 127.0.0.1 with a throwaway self-signed certificate
// (openssl); a client in the same process POSTs AdmissionReview v1 bodies over one keep-alive TLS
// connection, one at a time, as the API server does per webhook call, and times each from the request to
// the end of the answer. The handler alone (injection + JSON Patch, no HTTP) is timed too.
// Goals: p99 ≤ 10 ms (typical pod), ≤ 100 ms (1,500 env variables).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { WebhookServer } from '../control-plane/webhook/server.js';
import { createInjectHandler } from '../injector/admission.js';
import type { Pod } from '../injector/types.js';
import { fmt, fmtBytes, positiveInt, summarize, type BenchResult, type Benchmark, type Progress } from './report.js';

const USAGE = 'npm run bench -- inject [--requests 2000] [--large-requests 300] [--env 1500]';

function typicalPod(): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: 'reviews-v1-7f9c6d-',
      namespace: 'bookinfo',
      labels: { app: 'reviews', version: 'v1', 'pod-template-hash': '7f9c6d' },
      annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-12-06T08:00:00Z' },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'reviews-v1-7f9c6d', uid: 'x', controller: true },
      ],
    },
    spec: {
      serviceAccountName: 'reviews',
      containers: [
        {
          name: 'reviews',
          image: 'docker.io/istio/examples-bookinfo-reviews-v1:1.20.2',
          imagePullPolicy: 'IfNotPresent',
          ports: [{ containerPort: 9080, name: 'http', protocol: 'TCP' }],
          env: [{ name: 'LOG_DIR', value: '/tmp/logs' }],
          readinessProbe: { httpGet: { path: '/health', port: 'http' }, periodSeconds: 5 },
          livenessProbe: { httpGet: { path: '/health', port: 9080 }, periodSeconds: 10 },
          resources: { requests: { cpu: '100m', memory: '128Mi' } },
          volumeMounts: [
            { name: 'tmp', mountPath: '/tmp' },
            {
              name: 'kube-api-access-abcde',
              mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
              readOnly: true,
            },
          ],
        },
      ],
      volumes: [
        { name: 'tmp', emptyDir: {} },
        {
          name: 'kube-api-access-abcde',
          projected: {
            sources: [
              { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
              { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
            ],
          },
        },
      ],
    },
  };
}

function largePod(envCount: number): Pod {
  const pod = typicalPod();
  pod.spec!.containers[0]!.env = Array.from({ length: envCount }, (_, i) => ({
    name: `CONFIG_VALUE_${i}`,
    value: `value-${i}-${'x'.repeat(24)}`,
  }));
  return pod;
}

function body(pod: Pod, uid: number): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `uid-${uid}`,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'bookinfo',
      operation: 'CREATE',
      object: pod,
    },
  });
}

function selfSigned(dir: string): { cert: string; key: string } {
  const certFile = path.join(dir, 'tls.crt');
  const keyFile = path.join(dir, 'tls.key');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'ignore' },
  );
  return { cert: fs.readFileSync(certFile, 'utf8'), key: fs.readFileSync(keyFile, 'utf8') };
}

function post(agent: https.Agent, port: number, ca: string, payload: string): Promise<{ ms: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: '/inject',
        method: 'POST',
        agent,
        ca,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const ms = Number(process.hrtime.bigint() - started) / 1e6;
          const text = Buffer.concat(chunks).toString('utf8');
          const answer = JSON.parse(text) as { response?: { allowed?: boolean; patch?: string } };
          if (res.statusCode !== 200 || answer.response?.allowed !== true || !answer.response.patch) {
            reject(new Error(`unexpected answer ${res.statusCode}: ${text.slice(0, 300)}`));
            return;
          }
          resolve({ ms, bytes: Buffer.from(answer.response.patch, 'base64').length });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

export const inject: Benchmark = {
  name: 'inject',
  description: '/inject admission latency through HTTPS (p50/p99), typical pod and a pod with 1,500 env variables',
  usage: USAGE,
  async run(argv, progress: Progress): Promise<BenchResult> {
    const { values } = parseArgs({
      args: [...argv],
      options: {
        requests: { type: 'string', default: '2000' },
        'large-requests': { type: 'string', default: '300' },
        env: { type: 'string', default: '1500' },
      },
      strict: true,
    });
    const requests = positiveInt('requests', values.requests);
    const largeRequests = positiveInt('large-requests', values['large-requests']);
    const envCount = positiveInt('env', values.env);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-bench-inject-'));
    const tls = selfSigned(dir);
    const handler = createInjectHandler({ meshConfig: { trustDomain: 'cluster.local', mtlsMode: 'STRICT' } });
    const server = new WebhookServer({ cert: tls.cert, key: tls.key, handlers: { '/inject': handler } });
    const port = await server.listen('127.0.0.1', 0);
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    const cases = [
      { name: 'typical pod (1 container, 2 HTTP probes)', pod: typicalPod(), count: requests, goal: 10 },
      { name: `${envCount} env variables`, pod: largePod(envCount), count: largeRequests, goal: 100 },
    ];
    const rows: (string | number)[][] = [];
    const handlerRows: (string | number)[][] = [];
    const data: Record<string, unknown> = {};
    try {
      for (const c of cases) {
        const payload = body(c.pod, 0);
        progress.phase(`inject: ${c.name}: warm-up`);
        for (let i = 0; i < Math.min(200, c.count); i++) await post(agent, port, tls.cert, payload);
        progress.phase(`inject: ${c.name}: ${c.count} requests`);
        const times: number[] = [];
        let patchBytes = 0;
        const cpuBefore = process.cpuUsage();
        for (let i = 0; i < c.count; i++) {
          const r = await post(agent, port, tls.cert, body(c.pod, i));
          times.push(r.ms);
          patchBytes = r.bytes;
        }
        const cpu = process.cpuUsage(cpuBefore);
        const cpuMs = (cpu.user + cpu.system) / 1000 / c.count;
        const s = summarize(times);
        rows.push([
          c.name,
          fmtBytes(Buffer.byteLength(payload)),
          fmtBytes(patchBytes),
          s.count,
          fmt(s.p50, 2),
          fmt(s.p90, 2),
          fmt(s.p99, 2),
          fmt(s.max, 2),
          fmt(cpuMs, 2),
          `≤ ${c.goal}`,
          s.p99 <= c.goal ? 'met' : 'MISSED',
        ]);
        const inProcess: number[] = [];
        for (let i = 0; i < c.count; i++) {
          const request = JSON.parse(payload) as { request: Parameters<typeof handler>[0] };
          const started = process.hrtime.bigint();
          handler(request.request);
          inProcess.push(Number(process.hrtime.bigint() - started) / 1e6);
        }
        const h = summarize(inProcess);
        handlerRows.push([c.name, h.count, fmt(h.p50, 3), fmt(h.p99, 3), fmt(h.max, 3)]);
        data[c.name] = {
          https: s,
          handler: h,
          cpuMsPerRequest: cpuMs,
          requestBytes: Buffer.byteLength(payload),
          patchBytes,
        };
      }
    } finally {
      agent.destroy();
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    return {
      name: 'inject',
      title: 'Sidecar injection: /inject admission latency',
      params: { requests, largeRequests, envCount },
      tables: [
        {
          title: 'AdmissionReview through HTTPS (one keep-alive TLS connection, sequential), ms',
          columns: ['pod', 'request', 'patch', 'n', 'p50', 'p90', 'p99', 'max', 'CPU/req', 'goal p99', ''],
          rows,
        },
        {
          title: 'the handler alone (injectPod + JSON Patch + base64, no HTTP), ms',
          columns: ['pod', 'n', 'p50', 'p99', 'max'],
          rows: handlerRows,
        },
      ],
      notes: [
        'Client and server share one process (and its event loop): the HTTPS numbers include the client side.',
        'CPU/req: CPU time of the process (client and server, user + system) per request. Above p50 the percentiles mostly measure waiting for a CPU when the machine is loaded (see the load average).',
        'mtlsMode STRICT, so the HTTP probes are rewritten (the most work the envoy template does).',
      ],
      data,
    };
  },
};
