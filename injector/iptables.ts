// The traffic-capture rules of an injected pod (Envoy template), as iptables-restore input for the nat
// table. Pure: `trellis iptables` (iptables-command.ts) prints or applies them, the injector passes the
// pod's settings to that command as flags (capture-flags.ts), tests apply them in a network namespace.
//
// Istio's istio-iptables in REDIRECT mode (reference/envoy-translation.md §6.1), with our names:
//
//   PREROUTING  -p tcp -> TRELLIS_INBOUND: RETURN for the excluded ports (15020, 15021, 15090 and the
//               pod's), then every (or each listed) port -> TRELLIS_IN_REDIRECT (REDIRECT to 15006)
//   OUTPUT      -p tcp -> TRELLIS_OUTPUT:
//               from 127.0.0.6 on lo (Envoy's inbound passthrough source)          RETURN
//               the proxy (uid/gid 1337) to its own pod IP on lo                    -> inbound capture
//               anyone else on lo                                                   RETURN
//               the proxy (uid 1337, gid 1337) anywhere else                        RETURN
//               to 127.0.0.1                                                        RETURN
//               included outbound ports                                             -> TRELLIS_REDIRECT
//               excluded outbound ports, excluded CIDRs                             RETURN
//               every destination (or each included CIDR)                          -> TRELLIS_REDIRECT (15001)
//
// Only TCP is captured, only IPv4 (an IPv6 pod gets no rules: ip6tables is not run). The output is
// deterministic: the same config gives the same bytes (lists are sorted and deduplicated).
import net from 'node:net';
import { Ports, PROXY_UID } from '../api/names.js';

export interface CaptureConfig {
  /** Envoy's outbound capture port: 15001. */
  readonly outboundPort: number;
  /** Envoy's inbound capture port: 15006. */
  readonly inboundPort: number;
  /** The proxy's user and group: 1337. Their traffic is never captured. */
  readonly proxyUid: number;
  readonly proxyGid: number;
  /** Inbound ports captured: '*' (all but the excluded) or a list (none when empty). */
  readonly includeInboundPorts: '*' | readonly number[];
  /** Inbound ports never captured, besides {@link ALWAYS_EXCLUDED_INBOUND_PORTS}. */
  readonly excludeInboundPorts: readonly number[];
  /** Outbound destinations captured: '*' or a list of IPv4 CIDRs (none when empty). */
  readonly includeOutboundIpRanges: '*' | readonly string[];
  /** Outbound destinations never captured. */
  readonly excludeOutboundIpRanges: readonly string[];
  /** Outbound destination ports captured whatever the destination address. */
  readonly includeOutboundPorts: readonly number[];
  /** Outbound destination ports never captured. */
  readonly excludeOutboundPorts: readonly number[];
}

/** Ports of the sidecar itself that inbound capture never takes (design.md §4). */
export const ALWAYS_EXCLUDED_INBOUND_PORTS: readonly number[] = [15020, Ports.agentHealth, Ports.envoyStats];

export const defaultCaptureConfig: CaptureConfig = {
  outboundPort: Ports.outboundCapture,
  inboundPort: Ports.inboundCapture,
  proxyUid: PROXY_UID,
  proxyGid: PROXY_UID,
  includeInboundPorts: '*',
  excludeInboundPorts: [],
  includeOutboundIpRanges: '*',
  excludeOutboundIpRanges: [],
  includeOutboundPorts: [],
  excludeOutboundPorts: [],
};

export const CHAINS = {
  inbound: 'TRELLIS_INBOUND',
  inRedirect: 'TRELLIS_IN_REDIRECT',
  output: 'TRELLIS_OUTPUT',
  redirect: 'TRELLIS_REDIRECT',
} as const;

/** Why a port list or CIDR list does not parse; `index`-free, the caller names the field. */
export class CaptureValueError extends Error {}

/** `"80,8080"` → [80, 8080]; `"*"` → '*' when `star` is allowed; `""` → []. */
export function parsePortList(text: string, star: true): '*' | number[];
export function parsePortList(text: string, star?: false): number[];
export function parsePortList(text: string, star = false): '*' | number[] {
  const trimmed = text.trim();
  if (star && trimmed === '*') return '*';
  const ports: number[] = [];
  for (const part of trimmed.split(',').map((p) => p.trim())) {
    if (part === '') continue;
    if (!/^[0-9]{1,5}$/.test(part) || Number(part) < 1 || Number(part) > 65535) {
      throw new CaptureValueError(
        `"${part}" is not a port (1-65535)${star ? '; write a comma-separated list of ports or *' : ''}`,
      );
    }
    ports.push(Number(part));
  }
  return sortedUnique(ports);
}

/** `"10.0.0.0/8,192.168.1.1"` → CIDRs (a bare address is /32); `"*"` → '*' when allowed; `""` → []. */
export function parseCidrList(text: string, star: true): '*' | string[];
export function parseCidrList(text: string, star?: false): string[];
export function parseCidrList(text: string, star = false): '*' | string[] {
  const trimmed = text.trim();
  if (star && trimmed === '*') return '*';
  const cidrs: string[] = [];
  for (const part of trimmed.split(',').map((p) => p.trim())) {
    if (part === '') continue;
    const [address, bits, extra] = part.split('/');
    const prefix = bits === undefined ? 32 : /^[0-9]{1,2}$/.test(bits) ? Number(bits) : NaN;
    if (extra !== undefined || !net.isIPv4(address ?? '') || !(prefix >= 0 && prefix <= 32)) {
      throw new CaptureValueError(`"${part}" is not an IPv4 address or CIDR such as 10.0.0.0/8`);
    }
    cidrs.push(`${address}/${prefix}`);
  }
  return [...new Set(cidrs)].sort();
}

function sortedUnique(values: readonly number[]): number[] {
  return [...new Set(values)].sort((a, b) => a - b);
}

/** The rules, in iptables-restore format (nat table, one COMMIT), ending with a newline. */
export function captureRules(config: CaptureConfig = defaultCaptureConfig): string {
  const { inbound, inRedirect, output, redirect } = CHAINS;
  const lines: string[] = ['*nat'];
  for (const chain of [inbound, inRedirect, output, redirect]) lines.push(`:${chain} - [0:0]`);
  lines.push(`-A ${redirect} -p tcp -j REDIRECT --to-ports ${config.outboundPort}`);
  lines.push(`-A ${inRedirect} -p tcp -j REDIRECT --to-ports ${config.inboundPort}`);

  // Inbound.
  const excludedIn = sortedUnique([...ALWAYS_EXCLUDED_INBOUND_PORTS, ...config.excludeInboundPorts]);
  const includeIn = config.includeInboundPorts;
  if (includeIn === '*' || includeIn.length > 0) {
    lines.push(`-A PREROUTING -p tcp -j ${inbound}`);
    if (includeIn === '*') {
      for (const port of excludedIn) lines.push(`-A ${inbound} -p tcp --dport ${port} -j RETURN`);
      lines.push(`-A ${inbound} -p tcp -j ${inRedirect}`);
    } else {
      for (const port of sortedUnique(includeIn)) {
        if (!excludedIn.includes(port)) lines.push(`-A ${inbound} -p tcp --dport ${port} -j ${inRedirect}`);
      }
    }
  }

  // Outbound.
  const uid = config.proxyUid;
  const gid = config.proxyGid;
  lines.push(`-A OUTPUT -p tcp -j ${output}`);
  lines.push(`-A ${output} -s 127.0.0.6/32 -o lo -j RETURN`);
  for (const [match, id] of [
    ['--uid-owner', uid],
    ['--gid-owner', gid],
  ] as const) {
    if (includeIn === '*' || includeIn.length > 0) {
      lines.push(`-A ${output} ! -d 127.0.0.1/32 -o lo -m owner ${match} ${id} -j ${inRedirect}`);
    }
    lines.push(`-A ${output} -o lo -m owner ! ${match} ${id} -j RETURN`);
    lines.push(`-A ${output} -m owner ${match} ${id} -j RETURN`);
  }
  lines.push(`-A ${output} -d 127.0.0.1/32 -j RETURN`);
  for (const port of sortedUnique(config.includeOutboundPorts)) {
    lines.push(`-A ${output} -p tcp --dport ${port} -j ${redirect}`);
  }
  for (const port of sortedUnique(config.excludeOutboundPorts)) {
    lines.push(`-A ${output} -p tcp --dport ${port} -j RETURN`);
  }
  for (const cidr of [...new Set(config.excludeOutboundIpRanges)].sort()) {
    lines.push(`-A ${output} -d ${cidr} -j RETURN`);
  }
  const includeOut = config.includeOutboundIpRanges;
  if (includeOut === '*') {
    lines.push(`-A ${output} -j ${redirect}`);
  } else {
    for (const cidr of [...new Set(includeOut)].sort()) lines.push(`-A ${output} -d ${cidr} -j ${redirect}`);
  }
  lines.push('COMMIT');
  return `${lines.join('\n')}\n`;
}

/** The `trellis iptables` flags that reproduce `config` (only those that differ from the defaults). */
export function captureFlags(config: CaptureConfig): string[] {
  const d = defaultCaptureConfig;
  const flags: string[] = [];
  const list = (value: '*' | readonly (number | string)[]): string => (value === '*' ? '*' : value.join(','));
  const same = (a: '*' | readonly (number | string)[], b: '*' | readonly (number | string)[]): boolean =>
    list(a) === list(b);
  if (config.outboundPort !== d.outboundPort) flags.push('--outbound-port', String(config.outboundPort));
  if (config.inboundPort !== d.inboundPort) flags.push('--inbound-port', String(config.inboundPort));
  if (config.proxyUid !== d.proxyUid) flags.push('--proxy-uid', String(config.proxyUid));
  if (config.proxyGid !== d.proxyGid) flags.push('--proxy-gid', String(config.proxyGid));
  const pairs: [string, '*' | readonly (number | string)[], '*' | readonly (number | string)[]][] = [
    ['--include-inbound-ports', config.includeInboundPorts, d.includeInboundPorts],
    ['--exclude-inbound-ports', config.excludeInboundPorts, d.excludeInboundPorts],
    ['--include-outbound-ip-ranges', config.includeOutboundIpRanges, d.includeOutboundIpRanges],
    ['--exclude-outbound-ip-ranges', config.excludeOutboundIpRanges, d.excludeOutboundIpRanges],
    ['--include-outbound-ports', config.includeOutboundPorts, d.includeOutboundPorts],
    ['--exclude-outbound-ports', config.excludeOutboundPorts, d.excludeOutboundPorts],
  ];
  for (const [flag, value, fallback] of pairs) {
    if (!same(value, fallback)) flags.push(`${flag}=${list(value)}`);
  }
  return flags;
}
