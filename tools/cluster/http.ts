// Small network helpers of the clusters: free loopback ports and an HTTP(S) request with an optional CA and
// bearer token. Moved here from test/helpers/cluster.ts (the test helpers re-export them).
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';

/** A TCP port that is free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('no port'))));
    });
  });
}

export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

export interface HttpResult {
  readonly status: number;
  readonly body: string;
}

/**
 * An HTTP(S) request to a loopback server, with an optional CA and bearer token. Any other host is refused
 * unless named in `ownHost`: an address inside a network namespace the caller made (the local cluster).
 */
export function request(
  url: string,
  opts: {
    method?: string;
    body?: string;
    headers?: Record<string, string>;
    ca?: string;
    token?: string;
    ownHost?: string;
  } = {},
): Promise<HttpResult> {
  const u = new URL(url);
  if (u.hostname !== '127.0.0.1' && u.hostname !== 'localhost' && u.hostname !== opts.ownHost) {
    throw new Error(`refusing non-loopback URL ${url}`);
  }
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
  return new Promise((resolve, reject) => {
    const onResponse = (res: http.IncomingMessage): void => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    };
    const common = { method: opts.method ?? 'GET', headers, agent: false as const, timeout: 5000 };
    const req =
      u.protocol === 'https:'
        ? https.request(u, { ...common, ca: opts.ca }, onResponse)
        : http.request(u, common, onResponse);
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}
