// Application probes through the agent (injector/probes.ts): under STRICT mTLS the injector points the
// kubelet's HTTP probes at `/app-health/<container>/<readyz|livez|startupz>` on the health port and
// passes the originals in TRELLIS_APP_PROBES (JSON, path → AppProbe). The agent makes the original request
// to 127.0.0.1 (its own traffic is never captured) and answers with the application's status code; a
// path not in the map is a 404, so the health port is no proxy to other local ports.
import http from 'node:http';
import https from 'node:https';

export interface AppProbe {
  readonly port: number;
  readonly path: string;
  readonly scheme: 'HTTP' | 'HTTPS';
  readonly headers?: readonly { readonly name: string; readonly value: string }[];
  readonly timeoutSeconds: number;
}

export type AppProbes = ReadonlyMap<string, AppProbe>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses TRELLIS_APP_PROBES; throws naming the entry that is wrong. Empty or undefined: no probes. */
export function parseAppProbes(text: string | undefined): AppProbes {
  const probes = new Map<string, AppProbe>();
  if (text === undefined || text.trim() === '') return probes;
  const doc: unknown = JSON.parse(text);
  if (!isRecord(doc)) throw new Error('TRELLIS_APP_PROBES: must be a JSON object of path -> probe');
  for (const [path, value] of Object.entries(doc)) {
    const where = `TRELLIS_APP_PROBES[${path}]`;
    if (!path.startsWith('/app-health/')) throw new Error(`${where}: the path must start with /app-health/`);
    if (!isRecord(value)) throw new Error(`${where}: must be an object`);
    const { port, path: target, scheme, headers, timeoutSeconds } = value;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new Error(`${where}.port: must be a port`);
    }
    if (typeof target !== 'string' || !target.startsWith('/')) throw new Error(`${where}.path: must start with /`);
    if (scheme !== 'HTTP' && scheme !== 'HTTPS') throw new Error(`${where}.scheme: must be HTTP or HTTPS`);
    if (typeof timeoutSeconds !== 'number' || timeoutSeconds <= 0) {
      throw new Error(`${where}.timeoutSeconds: must be a positive number`);
    }
    const list: { name: string; value: string }[] = [];
    if (headers !== undefined) {
      if (!Array.isArray(headers)) throw new Error(`${where}.headers: must be a list`);
      for (const h of headers as unknown[]) {
        if (!isRecord(h) || typeof h.name !== 'string' || typeof h.value !== 'string') {
          throw new Error(`${where}.headers: each must be {name, value}`);
        }
        list.push({ name: h.name, value: h.value });
      }
    }
    probes.set(path, { port, path: target, scheme, headers: list, timeoutSeconds });
  }
  return probes;
}

/**
 * Runs one probe against 127.0.0.1 and returns the status to answer the kubelet with: the application's
 * status, or 503 with the reason when it does not answer in time. HTTPS is not verified (the kubelet does
 * not verify either).
 */
export function runAppProbe(probe: AppProbe): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { 'user-agent': 'trellis-agent-probe' };
    for (const h of probe.headers ?? []) headers[h.name.toLowerCase()] = h.value;
    const options = {
      host: '127.0.0.1',
      port: probe.port,
      path: probe.path,
      method: 'GET',
      headers,
      timeout: probe.timeoutSeconds * 1000,
    };
    const req =
      probe.scheme === 'HTTPS' ? https.request({ ...options, rejectUnauthorized: false }) : http.request(options);
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 502, body: `probe answered ${res.statusCode}\n` }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${probe.timeoutSeconds}s`)));
    req.on('error', (err) => resolve({ status: 503, body: `probe failed: ${err.message}\n` }));
    req.end();
  });
}
