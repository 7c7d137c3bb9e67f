// The webhook server keeps an idle connection open longer than the API server's webhook client does, so the
// client, not the server, closes it: a server that closes a connection the client is about to reuse fails
// that admission call (the API server does not retry a POST; CI saw "write: broken pipe" with Node's 5 s).
import tls from 'node:tls';
import test from 'ava';
import { WEBHOOK_IDLE_TIMEOUT_MS, WebhookServer } from '../../control-plane/webhook/server.js';
import { servingCertificate } from '../helpers/serving-certificate.js';

/**
 * A TLS connection that sends one keep-alive HTTP/1.1 request at a time: `send` resolves with the status of
 * the response (read whole, by its content-length); `closed` resolves when the server closes the connection.
 */
async function connection(port: number, ca: string) {
  const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: undefined });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  let buffered = Buffer.alloc(0);
  let waiting: ((status: number) => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    const head = buffered.indexOf('\r\n\r\n');
    if (head < 0 || !waiting) return;
    const headers = buffered.subarray(0, head).toString('latin1');
    const length = Number(/content-length: *(\d+)/i.exec(headers)?.[1] ?? 0);
    if (buffered.length < head + 4 + length) return;
    buffered = buffered.subarray(head + 4 + length);
    const done = waiting;
    waiting = undefined;
    done(Number(headers.split(' ')[1]));
  });
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
  const body = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: 'u1', operation: 'DELETE', kind: { group: '', version: 'v1', kind: 'Pod' }, namespace: 'shop' },
  });
  const send = (): Promise<number> =>
    new Promise<number>((resolve) => {
      waiting = resolve;
      socket.write(
        `POST /validate HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: keep-alive\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    });
  return { send, closed, destroy: () => socket.destroy() };
}

test('an idle connection stays open longer than the API server keeps one (90 s), so the client closes first', (t) => {
  t.true(WEBHOOK_IDLE_TIMEOUT_MS > 90_000, `${WEBHOOK_IDLE_TIMEOUT_MS} ms`);
});

test('the server closes a keep-alive connection once it has been idle for its idle timeout, not before', async (t) => {
  const { certPem, keyPem } = await servingCertificate();
  const server = new WebhookServer({ cert: certPem, key: keyPem, idleTimeoutMs: 500 });
  t.is(server.idleTimeoutMs, 500);
  t.is(new WebhookServer({ cert: certPem, key: keyPem }).idleTimeoutMs, WEBHOOK_IDLE_TIMEOUT_MS);
  const port = await server.listen('127.0.0.1', 0);
  t.teardown(() => server.close());
  const conn = await connection(port, certPem);
  t.teardown(() => conn.destroy());
  t.is(await conn.send(), 200);
  t.is(await conn.send(), 200, 'a second review over the same connection');
  const idleFrom = Date.now();
  const closedAt = await conn.closed;
  const idle = closedAt - idleFrom;
  // Not before its idle timeout; and well before Node's own default of 5 s, so the setting took effect.
  t.true(idle >= 450 && idle < 4_000, `closed by the server after ${idle} ms idle`);
});
