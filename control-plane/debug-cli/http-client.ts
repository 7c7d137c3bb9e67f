// The debug commands' HTTP client: GET a JSON document from the control plane's monitoring port
// (`--control-plane URL`, port-forward friendly), or POST a body and read the JSON answer, on node:http.
// Errors name the URL and what went wrong.
import http from 'node:http';

export class DebugRequestError extends Error {}

/** GETs `pathname` (with its query) from `base` and parses the JSON body; rejects on any status but 200. */
export function getJson(base: string, pathname: string, timeoutMs = 10_000): Promise<unknown> {
  return requestJson(base, pathname, undefined, timeoutMs);
}

/** POSTs `body` (`contentType`) to `pathname` and parses the JSON answer; rejects on any status but 200. */
export function postJson(
  base: string,
  pathname: string,
  body: string,
  contentType: string,
  timeoutMs = 30_000,
): Promise<unknown> {
  return requestJson(base, pathname, { body, contentType }, timeoutMs);
}

function requestJson(
  base: string,
  pathname: string,
  post: { readonly body: string; readonly contentType: string } | undefined,
  timeoutMs: number,
): Promise<unknown> {
  let url: URL;
  try {
    url = new URL(pathname, base.endsWith('/') ? base : `${base}/`);
  } catch {
    return Promise.reject(new DebugRequestError(`"${base}" is not a URL (e.g. http://127.0.0.1:15014)`));
  }
  if (url.protocol !== 'http:') {
    return Promise.reject(new DebugRequestError(`${url.href}: only http:// is supported (the monitoring port)`));
  }
  return new Promise((resolve, reject) => {
    const options: http.RequestOptions = post
      ? {
          method: 'POST',
          timeout: timeoutMs,
          headers: { 'content-type': post.contentType, 'content-length': Buffer.byteLength(post.body) },
        }
      : { timeout: timeoutMs };
    const req = http.request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', (err) => reject(new DebugRequestError(`${url.href}: ${err.message}`)));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          reject(new DebugRequestError(`${url.href}: answered ${res.statusCode} with a body that is not JSON`));
          return;
        }
        if (res.statusCode !== 200) {
          const message =
            typeof body === 'object' && body !== null && 'error' in body ? String(body.error) : text.trim();
          reject(new DebugRequestError(`${url.href}: ${res.statusCode}: ${message}`));
          return;
        }
        resolve(body);
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) =>
      reject(new DebugRequestError(`cannot reach the control plane at ${url.href}: ${err.message}`)),
    );
    req.end(post?.body);
  });
}
