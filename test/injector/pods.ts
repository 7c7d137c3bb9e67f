// Representative pods of the injector tests (inject.test.ts, admission.test.ts, inject-command.test.ts).
import fs from 'node:fs';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import YAML from 'yaml';
import type { Pod } from '../../injector/types.js';

export const LABELLED = { name: 'shop', labels: { 'trellis.dev/inject': 'enabled' } };
export const UNLABELLED = { name: 'plain', labels: {} };
/** Fixed image options so goldens do not change with the package version. */
export const IMAGE = { registry: 'registry.test', tag: 'v-test' };

export function simplePod(name = 'web'): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app: name } },
    spec: { containers: [{ name, image: 'nginx:1.27', ports: [{ containerPort: 8080, name: 'http' }] }] },
  };
}

/** Readiness (named port), liveness (number, headers, HTTPS), startup (tcp: left alone) probes. */
export function probesPod(): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'probed', labels: { app: 'probed' } },
    spec: {
      containers: [
        {
          name: 'app',
          image: 'app:1',
          ports: [
            { containerPort: 8080, name: 'http' },
            { containerPort: 8443, name: 'https' },
          ],
          readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 5 },
          livenessProbe: {
            httpGet: { path: '/live', port: 8443, scheme: 'HTTPS', httpHeaders: [{ name: 'X-Probe', value: 'yes' }] },
            timeoutSeconds: 3,
          },
          startupProbe: { tcpSocket: { port: 8080 } },
        },
        {
          name: 'other-host',
          image: 'app:1',
          readinessProbe: { httpGet: { path: '/', port: 80, host: 'example.com' } },
        },
      ],
    },
  };
}

/** Two containers, a user init container and volumes of its own. */
export function busyPod(): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'busy',
      labels: { app: 'busy', version: 'v2' },
      annotations: {
        'example.com/owner': 'team-a',
        'trellis.dev/proxyCPU': '250m',
        'trellis.dev/proxyMemoryLimit': '512Mi',
        'trellis.dev/excludeInboundPorts': '9090,8081',
        'trellis.dev/excludeOutboundIPRanges': '10.96.0.0/12,169.254.169.254',
        'trellis.dev/excludeOutboundPorts': '5432',
      },
    },
    spec: {
      serviceAccountName: 'busy',
      initContainers: [{ name: 'migrate', image: 'migrate:1', volumeMounts: [{ name: 'cache', mountPath: '/cache' }] }],
      containers: [
        { name: 'api', image: 'api:2', env: [{ name: 'MODE', value: 'prod' }], ports: [{ containerPort: 9090 }] },
        { name: 'worker', image: 'worker:2', volumeMounts: [{ name: 'cache', mountPath: '/cache' }] },
      ],
      volumes: [{ name: 'cache', emptyDir: {} }],
    },
  };
}

export function manyEnvPod(count = 1500): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'env-heavy', labels: { app: 'env-heavy' } },
    spec: {
      containers: [
        {
          name: 'app',
          image: 'app:1',
          env: Array.from({ length: count }, (_, i) => ({ name: `VAR_${i}`, value: `value-${i}-${'x'.repeat(20)}` })),
          readinessProbe: { httpGet: { path: '/ready', port: 8080 } },
        },
      ],
    },
  };
}

/** `actual` equals the YAML in `golden` (compared as data); UPDATE_GOLDEN=1 rewrites it. */
export function assertGoldenYaml(t: ExecutionContext, actual: unknown, name: string): void {
  const golden = path.join(import.meta.dirname, 'golden', `${name}.yaml`);
  if (process.env.UPDATE_GOLDEN === '1') {
    fs.mkdirSync(path.dirname(golden), { recursive: true });
    fs.writeFileSync(golden, YAML.stringify(actual, { aliasDuplicateObjects: false }));
  }
  t.deepEqual(
    actual,
    YAML.parse(fs.readFileSync(golden, 'utf8')),
    `differs from golden/${name}.yaml (UPDATE_GOLDEN=1 rewrites it)`,
  );
}
