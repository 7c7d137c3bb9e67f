// The containers and volumes each template adds (injector/README.md "Templates"). Pure.
import type { AppProbe } from '../sidecar/app-probes.js';
import { captureFlags, type CaptureConfig } from './iptables.js';
import {
  AGENT_NODE_OPTIONS,
  APP_PROBES_ENV,
  DATA_VOLUME,
  ENVOY_PROMETHEUS_PORT,
  HEALTH_PORT,
  INIT_CONTAINER,
  OUTPUT_DIR,
  PROXY_CONTAINER,
  PROXY_UID,
  ROOT_CERT_CONFIGMAP,
  ROOT_CERT_DIR,
  ROOT_CERT_FILE,
  ROOT_CERT_VOLUME,
  TOKEN_AUDIENCE,
  TOKEN_DIR,
  TOKEN_EXPIRATION_SECONDS,
  TOKEN_FILE,
  TOKEN_VOLUME,
} from './paths.js';
import type { ProxyResources, TemplateName } from './pod-settings.js';
import type { Container, EnvVar, Volume } from './types.js';

export interface ProxySpec {
  readonly template: TemplateName;
  readonly image: string;
  readonly controlPlane: string;
  readonly trustDomain: string;
  /** The pod's labels (node metadata LABELS: PeerAuthentication selectors, routing). */
  readonly labels: Readonly<Record<string, string>>;
  readonly resources: ProxyResources;
  /** An init container with restartPolicy Always (Kubernetes ≥ 1.29). */
  readonly native: boolean;
  readonly appProbes: Readonly<Record<string, AppProbe>>;
}

const fieldEnv = (name: string, fieldPath: string): EnvVar => ({
  name,
  valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath } },
});

/** Where the trellis/proxy image (an Envoy base image) has Envoy. */
export const ENVOY_BINARY = '/usr/local/bin/envoy';

/** `trellis-proxy`: `trellis agent` as UID 1337 (it starts and supervises Envoy in the envoy template). */
export function proxyContainer(spec: ProxySpec): Container {
  const labels = Object.keys(spec.labels)
    .sort()
    .map((k) => `${k}=${spec.labels[k]!}`)
    .join(',');
  const probeHttp = { path: '/healthz/ready', port: HEALTH_PORT, scheme: 'HTTP' };
  const env: EnvVar[] = [
    fieldEnv('POD_NAME', 'metadata.name'),
    fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
    fieldEnv('SERVICE_ACCOUNT', 'spec.serviceAccountName'),
    fieldEnv('INSTANCE_IP', 'status.podIP'),
    // The proxy's locality is its Node's (control-plane/translate/locality.ts), as Istio's injector does.
    fieldEnv('NODE_NAME', 'spec.nodeName'),
    { name: 'NODE_OPTIONS', value: AGENT_NODE_OPTIONS },
  ];
  if (Object.keys(spec.appProbes).length > 0) env.push({ name: APP_PROBES_ENV, value: JSON.stringify(spec.appProbes) });
  const container: Container = {
    name: PROXY_CONTAINER,
    image: spec.image,
    command: ['trellis', 'agent'],
    args: [
      '--proxy-type',
      spec.template,
      '--control-plane',
      spec.controlPlane,
      '--trust-domain',
      spec.trustDomain,
      '--root-cert',
      ROOT_CERT_FILE,
      '--token-file',
      TOKEN_FILE,
      '--output-dir',
      OUTPUT_DIR,
      '--health-port',
      String(HEALTH_PORT),
      ...(labels === '' ? [] : ['--labels', labels]),
      ...(spec.template === 'envoy' ? ['--envoy-binary', ENVOY_BINARY] : []),
    ],
    env,
    ports: [
      { name: 'trellis-health', containerPort: HEALTH_PORT, protocol: 'TCP' },
      ...(spec.template === 'envoy'
        ? [{ name: 'http-envoy-prom', containerPort: ENVOY_PROMETHEUS_PORT, protocol: 'TCP' }]
        : []),
    ],
    readinessProbe: {
      httpGet: { ...probeHttp },
      initialDelaySeconds: 1,
      periodSeconds: 2,
      timeoutSeconds: 3,
      failureThreshold: 4,
    },
    // With a native sidecar the kubelet starts the next container only once this succeeds: the
    // application never starts before its proxy has a certificate and config (pain point §3.2).
    ...(spec.native
      ? { startupProbe: { httpGet: { ...probeHttp }, periodSeconds: 1, timeoutSeconds: 3, failureThreshold: 600 } }
      : {}),
    resources: {
      requests: { ...spec.resources.requests },
      limits: { ...spec.resources.limits },
    },
    securityContext: {
      runAsUser: PROXY_UID,
      runAsGroup: PROXY_UID,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    },
    volumeMounts: [
      { name: DATA_VOLUME, mountPath: OUTPUT_DIR },
      { name: ROOT_CERT_VOLUME, mountPath: ROOT_CERT_DIR, readOnly: true },
      { name: TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true },
    ],
    ...(spec.native ? { restartPolicy: 'Always' } : {}),
  };
  return container;
}

/** `trellis-init`: applies the capture rules (`trellis iptables --apply`), as root with NET_ADMIN and NET_RAW only. */
export function initContainer(image: string, capture: CaptureConfig): Container {
  return {
    name: INIT_CONTAINER,
    image,
    command: ['trellis', 'iptables'],
    args: ['--apply', '--backend', 'auto', ...captureFlags(capture)],
    resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { cpu: '1', memory: '128Mi' } },
    securityContext: {
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      allowPrivilegeEscalation: false,
      privileged: false,
      // The legacy backend takes the lock /run/xtables.lock (it refuses to run without it), as in Istio's
      // istio-init; the container lives for one command and holds nothing.
      readOnlyRootFilesystem: false,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
    },
  };
}

export function sidecarVolumes(): Volume[] {
  return [
    { name: DATA_VOLUME, emptyDir: { medium: 'Memory' } },
    { name: ROOT_CERT_VOLUME, configMap: { name: ROOT_CERT_CONFIGMAP } },
    {
      name: TOKEN_VOLUME,
      projected: {
        sources: [
          {
            serviceAccountToken: {
              audience: TOKEN_AUDIENCE,
              expirationSeconds: TOKEN_EXPIRATION_SECONDS,
              path: 'trellis-ca',
            },
          },
        ],
      },
    },
  ];
}
