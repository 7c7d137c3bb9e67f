// `trellis proxy-status`: per connected proxy and per type (CDS, LDS, EDS, RDS, SDS), whether the proxy
// took what it was last sent: SYNCED (ACKed), STALE (sent, no answer yet), NACKED (rejected, with the
// proxy's error) or NOT SENT; the version, and how long since the type last changed.
import { fetchProxies, type StreamView, type TypeView } from './debug-proxies.js';
import { formatAge, renderData, renderTable, type OutputFormat } from './render.js';

export const STATUS_TYPES = ['CDS', 'LDS', 'EDS', 'RDS', 'SDS'] as const;

export type SyncState = 'SYNCED' | 'STALE' | 'NACKED' | 'NOT SENT';

export interface TypeSync {
  readonly state: SyncState;
  /** The version last sent (NACKED: the rejected one); '' when nothing was sent. */
  readonly version: string;
  /** The version the proxy last ACKed ('' for none). */
  readonly ackedVersion: string;
  /** The proxy's error detail, when the latest response was NACKed. */
  readonly error?: string;
  /** The last send, ACK or NACK of this type. */
  readonly lastChange?: string;
}

export interface ProxyStatusRow {
  readonly proxy: string;
  readonly proxyType: string;
  readonly protocol: string;
  readonly stream: number;
  readonly configHash: string;
  readonly lastChange?: string;
  readonly types: Readonly<Record<(typeof STATUS_TYPES)[number], TypeSync>>;
}

/**
 * Whether the last ACK answers the latest response: the version sent was ACKed, after it was sent (a
 * response that resends an ACKed version, e.g. after a NACK when the config went back, waits for its ACK).
 */
function ackedLatest(t: TypeView): boolean {
  return (
    t.ackedVersion === t.sentVersion &&
    t.ackedAt !== undefined &&
    t.sentAt !== undefined &&
    Date.parse(t.ackedAt) >= Date.parse(t.sentAt)
  );
}

/**
 * The state of one type. The nonce tells which response a NACK was for: a NACK of the latest nonce
 * means the proxy runs without the latest config (and the control plane does not resend it until the
 * config changes); otherwise the type is SYNCED once the version sent was ACKed after it was sent.
 */
export function typeSync(t: TypeView | undefined): TypeSync {
  if (!t || t.sentNonce === '' || t.responses === 0) {
    return { state: 'NOT SENT', version: '', ackedVersion: t?.ackedVersion ?? '' };
  }
  const lastChange = latest([t.sentAt, t.ackedAt, t.lastNack?.at]);
  const base = { version: t.sentVersion, ackedVersion: t.ackedVersion, ...(lastChange ? { lastChange } : {}) };
  if (t.lastNack && t.lastNack.nonce === t.sentNonce) return { state: 'NACKED', ...base, error: t.lastNack.message };
  if (ackedLatest(t)) return { state: 'SYNCED', ...base };
  return { state: 'STALE', ...base };
}

function latest(times: readonly (string | undefined)[]): string | undefined {
  let best: string | undefined;
  for (const t of times) if (t !== undefined && (best === undefined || Date.parse(t) > Date.parse(best))) best = t;
  return best;
}

export function statusRows(streams: readonly StreamView[]): ProxyStatusRow[] {
  return streams.map((s) => {
    const byType = new Map(s.types.map((t) => [t.type, t]));
    const types = Object.fromEntries(STATUS_TYPES.map((name) => [name, typeSync(byType.get(name))])) as Record<
      (typeof STATUS_TYPES)[number],
      TypeSync
    >;
    const lastChange = latest(STATUS_TYPES.map((name) => types[name].lastChange));
    return {
      proxy: s.proxyId,
      proxyType: s.proxyType,
      protocol: s.protocol,
      stream: s.stream,
      configHash: s.configHash ?? '',
      ...(lastChange ? { lastChange } : {}),
      types,
    };
  });
}

const short = (version: string): string => version.slice(0, 8);

/** The human table, then one line per NACK with the proxy's error. */
export function renderStatusTable(rows: readonly ProxyStatusRow[], now: number): string {
  if (rows.length === 0) return 'no proxies connected\n';
  const table = renderTable(
    ['PROXY', 'TYPE', ...STATUS_TYPES, 'VERSION', 'LAST CHANGE'],
    rows.map((r) => [
      r.proxy,
      `${r.proxyType}/${r.protocol}`,
      ...STATUS_TYPES.map((name) => {
        const sync = r.types[name];
        return sync.state === 'NOT SENT' ? sync.state : `${sync.state} (${short(sync.version)})`;
      }),
      short(r.configHash),
      r.lastChange ? `${formatAge(now - Date.parse(r.lastChange))} ago` : '-',
    ]),
  );
  const errors = rows.flatMap((r) =>
    STATUS_TYPES.flatMap((name) => {
      const sync = r.types[name];
      return sync.state === 'NACKED' ? [`${r.proxy} ${name} NACKED: ${sync.error ?? ''}`] : [];
    }),
  );
  return errors.length === 0 ? table : `${table}\n${errors.join('\n')}\n`;
}

export async function runProxyStatus(options: {
  readonly controlPlane: string;
  readonly output: OutputFormat;
  readonly stdout: NodeJS.WritableStream;
}): Promise<void> {
  const rows = statusRows(await fetchProxies(options.controlPlane));
  options.stdout.write(
    options.output === 'table' ? renderStatusTable(rows, Date.now()) : renderData(rows, options.output),
  );
}
