// The agent's Envoy supervisor (sidecar/envoy-process.ts) with real processes: a binary that does not exist
// and one that exits at once (this machine has no Envoy). Either way the reason is reported and Envoy is
// started again after the backoff, on a manual clock.
import test from 'ava';
import { silentLogger } from '../../control-plane/logger.js';
import { EnvoyProcess, envoyArgs } from '../../sidecar/envoy-process.js';
import { ManualClock } from '../helpers/manual-clock.js';

async function until(what: string, check: () => boolean, deadlineMs = 20_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test('Envoy is started on the bootstrap with drain times below the pod grace period', (t) => {
  t.deepEqual(envoyArgs('/var/run/trellis/envoy-bootstrap.json', ['--concurrency', '2']), [
    '-c',
    '/var/run/trellis/envoy-bootstrap.json',
    '--drain-time-s',
    '20',
    '--parent-shutdown-time-s',
    '25',
    '--concurrency',
    '2',
  ]);
});

test('a missing Envoy binary: the reason names it, and it is tried again after the backoff', async (t) => {
  const clock = new ManualClock();
  const envoy = new EnvoyProcess({
    binary: '/nonexistent/envoy',
    bootstrap: '/tmp/b.json',
    logger: silentLogger,
    clock,
  });
  envoy.start();
  await until('the spawn error', () => /ENOENT/.test(envoy.notRunningReason() ?? ''));
  t.regex(envoy.notRunningReason()!, /envoy could not be started: \/nonexistent\/envoy: ENOENT/);
  t.is(envoy.starts, 1);
  t.is(clock.pending().length, 1, 'one restart is scheduled');
  clock.advance(1_000);
  await until('the second attempt', () => envoy.starts === 2 && clock.pending().length === 1);
  t.true(clock.pending()[0]! >= 1_000, 'the second delay is longer (the backoff doubles)');
  await envoy.stop();
  t.is(clock.pending().length, 0, 'stop cancels the restart');
});

test('an Envoy that exits: reported with its exit code and restarted', async (t) => {
  const clock = new ManualClock();
  const envoy = new EnvoyProcess({ binary: '/bin/false', bootstrap: '/tmp/b.json', logger: silentLogger, clock });
  envoy.start();
  await until('the exit', () => /exited/.test(envoy.notRunningReason() ?? ''));
  t.is(envoy.notRunningReason(), 'envoy exited (code 1)');
  clock.advance(1_000);
  await until('the restart', () => envoy.starts === 2);
  await envoy.stop();
});
