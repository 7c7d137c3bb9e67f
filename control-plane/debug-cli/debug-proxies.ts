// What the debug commands read from `/debug/proxies`: each open ADS stream's node and, per type, what was
// sent, ACKed and NACKed. The JSON is checked as it is read, so a control plane of another version fails
// with a message rather than a wrong table.
import { getJson } from './http-client.js';

export interface NackView {
  readonly version: string;
  readonly nonce: string;
  readonly message: string;
  readonly at: string;
}

export interface TypeView {
  /** `CDS`, `LDS`, `EDS`, `RDS`, `SDS` (or a message name for other types). */
  readonly type: string;
  readonly sentVersion: string;
  readonly sentNonce: string;
  readonly sentAt: string | undefined;
  readonly responses: number;
  readonly ackedVersion: string;
  readonly ackedAt: string | undefined;
  readonly lastNack: NackView | undefined;
}

export interface StreamView {
  readonly stream: number;
  readonly protocol: string;
  readonly proxyId: string;
  readonly proxyType: string;
  readonly configHash: string | undefined;
  readonly connectedAt: string;
  readonly types: readonly TypeView[];
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function str(o: Json, key: string, where: string): string {
  const v = o[key];
  if (typeof v !== 'string') throw new Error(`/debug/proxies: ${where}.${key} is not a string`);
  return v;
}

function optStr(o: Json, key: string, where: string): string | undefined {
  return o[key] === undefined || o[key] === null ? undefined : str(o, key, where);
}

function readNack(value: unknown, where: string): NackView | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw new Error(`/debug/proxies: ${where} is not an object`);
  return {
    version: str(value, 'version', where),
    nonce: str(value, 'nonce', where),
    message: str(value, 'message', where),
    at: str(value, 'at', where),
  };
}

function readType(value: unknown, where: string): TypeView {
  if (!isObject(value)) throw new Error(`/debug/proxies: ${where} is not an object`);
  return {
    type: str(value, 'type', where),
    sentVersion: str(value, 'sentVersion', where),
    sentNonce: str(value, 'sentNonce', where),
    sentAt: optStr(value, 'sentAt', where),
    responses: typeof value.responses === 'number' ? value.responses : 0,
    ackedVersion: str(value, 'ackedVersion', where),
    ackedAt: optStr(value, 'ackedAt', where),
    lastNack: readNack(value.lastNack, `${where}.lastNack`),
  };
}

/** Parses `/debug/proxies`; streams that have not sent their node yet are left out. */
export function parseDebugProxies(body: unknown): StreamView[] {
  if (!Array.isArray(body)) throw new Error('/debug/proxies: expected a list of streams');
  const out: StreamView[] = [];
  body.forEach((s: unknown, i) => {
    const where = `[${i}]`;
    if (!isObject(s)) throw new Error(`/debug/proxies: ${where} is not an object`);
    if (!isObject(s.node)) return;
    const types = Array.isArray(s.types) ? s.types : [];
    out.push({
      stream: typeof s.stream === 'number' ? s.stream : i,
      protocol: str(s, 'protocol', where),
      proxyId: str(s.node, 'id', `${where}.node`),
      proxyType: optStr(s.node, 'proxyType', `${where}.node`) ?? '',
      configHash: optStr(s, 'configHash', where),
      connectedAt: str(s, 'connectedAt', where),
      types: types.map((t: unknown, j) => readType(t, `${where}.types[${j}]`)),
    });
  });
  return out.sort((a, b) => (a.proxyId < b.proxyId ? -1 : a.proxyId > b.proxyId ? 1 : a.stream - b.stream));
}

export async function fetchProxies(base: string): Promise<StreamView[]> {
  return parseDebugProxies(await getJson(base, 'debug/proxies'));
}
