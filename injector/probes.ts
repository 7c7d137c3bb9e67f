// Rewrites the HTTP probes of application containers through the agent when their port is STRICT mTLS
// (Istio's app_probe.go): the kubelet probes in plaintext, which a STRICT inbound listener refuses, so the
// probe goes to the agent's health port (15021, never captured) at `/app-health/<container>/<kind>`; the
// agent (sidecar/app-probes.ts) makes the original request to 127.0.0.1 and answers with its status. The
// originals travel in TRELLIS_APP_PROBES on trellis-proxy: the agent serves only those paths, so the
// health port never becomes a proxy to arbitrary local ports. Pure.
import type { AppProbe } from '../sidecar/app-probes.js';
import { APP_HEALTH_PREFIX, HEALTH_PORT } from './paths.js';
import type { Container, Probe } from './types.js';

export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

/** The inbound mode of a container port of the workload. */
export type PortMtls = (port: number) => MtlsMode;

const KINDS = [
  ['readinessProbe', 'readyz'],
  ['livenessProbe', 'livez'],
  ['startupProbe', 'startupz'],
] as const;

export class ProbeError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Rewrites `containers` in place (they are the injector's copy) and returns the originals by path, in
 * container order. Probes with `host` set (they do not target the pod) and non-HTTP probes are left alone.
 */
export function rewriteProbes(containers: Container[], portMtls: PortMtls): Record<string, AppProbe> {
  const probes: Record<string, AppProbe> = {};
  containers.forEach((container, index) => {
    for (const [key, kind] of KINDS) {
      const probe: Probe | undefined = container[key];
      const get = probe?.httpGet;
      if (!probe || !get || get.host !== undefined) continue;
      const field = `spec.containers[${index}].${key}.httpGet.port`;
      const port = resolvePort(container, get.port, field);
      if (portMtls(port) !== 'STRICT') continue;
      const path = `${APP_HEALTH_PREFIX}${container.name}/${kind}`;
      const scheme = get.scheme ?? 'HTTP';
      if (scheme !== 'HTTP' && scheme !== 'HTTPS') {
        throw new ProbeError(field.replace(/port$/, 'scheme'), `must be HTTP or HTTPS, not ${JSON.stringify(scheme)}`);
      }
      probes[path] = {
        port,
        path: get.path ?? '/',
        scheme,
        ...(get.httpHeaders && get.httpHeaders.length > 0 ? { headers: get.httpHeaders } : {}),
        timeoutSeconds: probe.timeoutSeconds ?? 1,
      };
      probe.httpGet = { path, port: HEALTH_PORT, scheme: 'HTTP' };
    }
  });
  return probes;
}

function resolvePort(container: Container, port: number | string, field: string): number {
  if (typeof port === 'number') return port;
  if (/^[0-9]+$/.test(port)) return Number(port);
  const named = (container.ports ?? []).find((p) => p.name === port);
  if (!named) throw new ProbeError(field, `no port named ${JSON.stringify(port)} in container ${container.name}`);
  return named.containerPort;
}
