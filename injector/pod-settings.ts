// What a pod's annotations ask of its sidecar: the template, the proxy's resources and the traffic
// capture. Pure; every error names the annotation.
import { CAPTURE_ANNOTATIONS, RESOURCE_ANNOTATIONS, TEMPLATE_ANNOTATION } from './annotations.js';
import {
  CaptureValueError,
  defaultCaptureConfig,
  parseCidrList,
  parsePortList,
  type CaptureConfig,
} from './iptables.js';

export type TemplateName = 'envoy' | 'grpc';
export const TEMPLATES: readonly TemplateName[] = ['envoy', 'grpc'];

export class SettingError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

const field = (annotation: string): string => `metadata.annotations[${annotation}]`;

export function templateOf(annotations: Readonly<Record<string, string>>, fallback: TemplateName): TemplateName {
  const value = annotations[TEMPLATE_ANNOTATION];
  if (value === undefined) return fallback;
  if ((TEMPLATES as readonly string[]).includes(value)) return value as TemplateName;
  throw new SettingError(field(TEMPLATE_ANNOTATION), `must be envoy or grpc, not ${JSON.stringify(value)}`);
}

export interface ProxyResources {
  readonly requests: { readonly cpu: string; readonly memory: string };
  readonly limits: { readonly cpu: string; readonly memory: string };
}

/** Istio's defaults for istio-proxy. */
export const DEFAULT_PROXY_RESOURCES: ProxyResources = {
  requests: { cpu: '100m', memory: '128Mi' },
  limits: { cpu: '2', memory: '1Gi' },
};

// A Kubernetes quantity (resource.Quantity): a decimal number with an SI, binary or exponent suffix.
const QUANTITY = /^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+)?$/;

export function proxyResources(annotations: Readonly<Record<string, string>>): ProxyResources {
  const read = (annotation: string, fallback: string): string => {
    const value = annotations[annotation];
    if (value === undefined) return fallback;
    if (!QUANTITY.test(value.trim())) {
      throw new SettingError(
        field(annotation),
        `must be a Kubernetes quantity such as 100m or 128Mi, not ${JSON.stringify(value)}`,
      );
    }
    return value.trim();
  };
  const d = DEFAULT_PROXY_RESOURCES;
  return {
    requests: {
      cpu: read(RESOURCE_ANNOTATIONS.cpuRequest, d.requests.cpu),
      memory: read(RESOURCE_ANNOTATIONS.memoryRequest, d.requests.memory),
    },
    limits: {
      cpu: read(RESOURCE_ANNOTATIONS.cpuLimit, d.limits.cpu),
      memory: read(RESOURCE_ANNOTATIONS.memoryLimit, d.limits.memory),
    },
  };
}

export function captureConfig(annotations: Readonly<Record<string, string>>): CaptureConfig {
  const a = CAPTURE_ANNOTATIONS;
  const read = <T>(annotation: string, parse: (text: string) => T, fallback: T): T => {
    const value = annotations[annotation];
    if (value === undefined) return fallback;
    try {
      return parse(value);
    } catch (err) {
      if (err instanceof CaptureValueError) throw new SettingError(field(annotation), err.message);
      throw err;
    }
  };
  const d = defaultCaptureConfig;
  return {
    ...d,
    includeInboundPorts: read(a.includeInboundPorts, (t) => parsePortList(t, true), d.includeInboundPorts),
    excludeInboundPorts: read(a.excludeInboundPorts, (t) => parsePortList(t), d.excludeInboundPorts),
    includeOutboundIpRanges: read(a.includeOutboundIpRanges, (t) => parseCidrList(t, true), d.includeOutboundIpRanges),
    excludeOutboundIpRanges: read(a.excludeOutboundIpRanges, (t) => parseCidrList(t), d.excludeOutboundIpRanges),
    includeOutboundPorts: read(a.includeOutboundPorts, (t) => parsePortList(t), d.includeOutboundPorts),
    excludeOutboundPorts: read(a.excludeOutboundPorts, (t) => parsePortList(t), d.excludeOutboundPorts),
  };
}
