// While the CA is away, the agent's last renewal attempt before its certificate expires is made *before*
// notAfter (lastTryMarginMs: a tenth of the lifetime, at most 5 s), then once more at notAfter. Found by
// test/e2e/apiserver-restart.test.ts: with the CA killed across a renewal point and back before expiry,
// the agent's backoff was clamped to the expiry itself, so its new certificate arrived after the old one had
// expired. Real CA (a control plane's, then closed), times on a manual clock, so the schedule is exact.
import test from 'ava';
import { CaClient } from '../../sidecar/ca-client.js';
import { CertificateManager, lastTryMarginMs } from '../../sidecar/certificate-manager.js';
import { captureLogs, startCaControlPlane } from '../helpers/ca-control-plane.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { waitFor } from '../helpers/wait.js';
import { CA_TOKENS, SHOP_CART, TOKEN_CART } from './helpers.js';

const SERVED = 'certificates: renewal failed; the current certificate is still served';

test('with the CA away, the last try is lastTryMarginMs before notAfter, then one at notAfter', async (t) => {
  const env = await startCaControlPlane({ tokens: CA_TOKENS, prefix: 'trellis-last-try-', logLevel: 'silent' });
  t.teardown(() => env.cleanup());
  const clock = new ManualClock(Date.now());
  const { logger, lines } = captureLogs('debug');
  const client = new CaClient({
    address: `127.0.0.1:${env.cp.xdsPort!}`,
    transport: { kind: 'plaintext' },
    tokenFile: env.tokenFile('last-try-token', TOKEN_CART),
    deadlineMs: 2_000,
  });
  // A backoff longer than the certificate's life: every retry is clamped by the expiry rule under test.
  const m = new CertificateManager({
    issuer: client,
    identity: SHOP_CART,
    ttlSeconds: 3600,
    backoff: { initialMs: 10 * 3_600_000, maxMs: 10 * 3_600_000 },
    clock,
    logger,
  });
  t.teardown(async () => {
    await m.stop();
    client.close();
  });
  const started = m.start();
  clock.advance(0); // the first attempt is a timer at 0 ms
  const first = await started;
  const margin = lastTryMarginMs(first);
  t.is(margin, 5_000, 'a tenth of an hour, capped at 5 s');
  await env.close();

  // The renewal point: the CA is gone, the retry is clamped to notAfter − margin.
  const renewAt = Date.parse(String(lines.find((l) => l.msg === 'certificates: got the first certificate')?.renewAt));
  clock.advance(renewAt - clock.now());
  await waitFor('the failed renewal', () => lines.some((l) => l.msg === SERVED), 20_000);
  const failures = (): Record<string, unknown>[] => lines.filter((l) => l.msg === SERVED);
  t.is(Number(failures()[0]!.retryInMs), Math.round(first.notAfter.getTime() - clock.now() - margin));

  // That last try fails too (the CA is still away): within the margin, once more at notAfter itself.
  clock.advance(Number(failures()[0]!.retryInMs));
  await waitFor('the second failed renewal', () => failures().length >= 2, 20_000);
  t.is(Number(failures()[1]!.retryInMs), margin);
  t.is(clock.now() + margin, first.notAfter.getTime());
  t.true(m.ready(), 'the certificate is still served');
});
