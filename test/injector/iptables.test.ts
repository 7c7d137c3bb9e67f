// The capture rules: their exact text, what the annotations change, and, as root, the real
// iptables-restore (default, nft and legacy) accepting and applying them inside a network namespace made
// for the test (`unshare -n`), both directly and through `trellis iptables --apply`. Without root or the
// iptables tools those tests are skipped with one line, except under CI=true, where they fail.
//   UPDATE_GOLDEN=1 npx ava test/injector/iptables.test.ts
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { captureConfig } from '../../injector/pod-settings.js';
import { captureFlags, captureRules, defaultCaptureConfig } from '../../injector/iptables.js';
import { repoRoot } from '../helpers/peer-paths.js';

const GOLDEN = path.join(import.meta.dirname, 'golden', 'iptables-default.rules');

function which(binary: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${binary}`], { stdio: 'ignore' }).status === 0;
}

/** Root with unshare and the given restore tools; otherwise skip (fail under CI) with one line. */
function requireIptables(t: ExecutionContext, binaries: readonly string[]): boolean {
  const missing = ['unshare', ...binaries].filter((b) => !which(b));
  const why =
    process.getuid?.() !== 0
      ? 'needs root (network namespaces, iptables)'
      : missing.length > 0
        ? `needs ${missing.join(', ')} (apt-get install iptables util-linux)`
        : undefined;
  if (why === undefined) return true;
  if (process.env.CI === 'true') t.fail(why);
  else {
    t.log(`skipped: ${why}`);
    t.pass();
  }
  return false;
}

/** Runs `script` (sh) in a fresh network namespace with `input` on stdin. */
function inNetns(script: string, input = ''): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('unshare', ['-n', 'sh', '-c', script], {
    input,
    encoding: 'utf8',
    cwd: repoRoot,
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('default rules: exactly the golden', (t) => {
  const rules = captureRules();
  if (process.env.UPDATE_GOLDEN === '1') fs.writeFileSync(GOLDEN, rules);
  t.is(rules, fs.readFileSync(GOLDEN, 'utf8'));
  t.is(captureRules(defaultCaptureConfig), rules, 'deterministic');
  t.deepEqual(captureFlags(defaultCaptureConfig), []);
});

test('annotations: included and excluded ports and CIDRs', (t) => {
  const config = captureConfig({
    'trellis.dev/includeInboundPorts': '8080, 9090,8080,15021',
    'trellis.dev/excludeInboundPorts': '9090',
    'trellis.dev/includeOutboundIPRanges': '10.0.0.0/8,192.168.0.0/16',
    'trellis.dev/excludeOutboundIPRanges': '10.96.0.1',
    'trellis.dev/includeOutboundPorts': '3306',
    'trellis.dev/excludeOutboundPorts': '5432,6379',
  });
  const lines = captureRules(config).split('\n');
  const inbound = lines.filter((l) => l.startsWith('-A TRELLIS_INBOUND'));
  t.deepEqual(
    inbound,
    ['-A TRELLIS_INBOUND -p tcp --dport 8080 -j TRELLIS_IN_REDIRECT'],
    'listed, minus excluded and 15021',
  );
  const output = lines.filter((l) => l.startsWith('-A TRELLIS_OUTPUT')).slice(-7);
  t.deepEqual(output, [
    '-A TRELLIS_OUTPUT -d 127.0.0.1/32 -j RETURN',
    '-A TRELLIS_OUTPUT -p tcp --dport 3306 -j TRELLIS_REDIRECT',
    '-A TRELLIS_OUTPUT -p tcp --dport 5432 -j RETURN',
    '-A TRELLIS_OUTPUT -p tcp --dport 6379 -j RETURN',
    '-A TRELLIS_OUTPUT -d 10.96.0.1/32 -j RETURN',
    '-A TRELLIS_OUTPUT -d 10.0.0.0/8 -j TRELLIS_REDIRECT',
    '-A TRELLIS_OUTPUT -d 192.168.0.0/16 -j TRELLIS_REDIRECT',
  ]);
  const none = captureRules(captureConfig({ 'trellis.dev/includeInboundPorts': '' }));
  t.false(none.includes('PREROUTING'), 'no inbound capture at all');
  t.false(none.includes('TRELLIS_IN_REDIRECT\n-A TRELLIS_OUTPUT ! -d'), 'nor the proxy-to-own-IP rule');
  t.deepEqual(captureFlags(config), [
    '--include-inbound-ports=8080,9090,15021',
    '--exclude-inbound-ports=9090',
    '--include-outbound-ip-ranges=10.0.0.0/8,192.168.0.0/16',
    '--exclude-outbound-ip-ranges=10.96.0.1/32',
    '--include-outbound-ports=3306',
    '--exclude-outbound-ports=5432,6379',
  ]);
});

const configs = {
  default: captureRules(),
  annotated: captureRules(
    captureConfig({
      'trellis.dev/includeInboundPorts': '8080,9090',
      'trellis.dev/excludeOutboundIPRanges': '10.96.0.0/12,169.254.169.254',
      'trellis.dev/includeOutboundPorts': '3306',
      'trellis.dev/excludeOutboundPorts': '5432',
    }),
  ),
};

for (const binary of ['iptables-restore', 'iptables-nft-restore', 'iptables-legacy-restore']) {
  test(`${binary} --test accepts the rules in a new network namespace`, (t) => {
    if (!requireIptables(t, [binary])) return;
    for (const [name, rules] of Object.entries(configs)) {
      const r = inNetns(`${binary} --noflush --test`, rules);
      t.is(r.code, 0, `${name}: ${r.stderr}`);
    }
  });
}

for (const backend of ['nft', 'legacy'] as const) {
  test(`trellis iptables --apply --backend ${backend} installs the rules in the pod's network namespace`, (t) => {
    if (!requireIptables(t, [`iptables-${backend}-restore`, `iptables-${backend}-save`])) return;
    const r = inNetns(
      `node --import tsx control-plane/main.ts iptables --apply --backend ${backend} --exclude-outbound-ports 5432 && iptables-${backend}-save -t nat`,
    );
    t.is(r.code, 0, r.stderr);
    t.regex(r.stderr, new RegExp(`applied with iptables-${backend}-restore \\(backend ${backend}\\)`));
    const saved = r.stdout.split('\n');
    for (const line of [
      '-A PREROUTING -p tcp -j TRELLIS_INBOUND',
      '-A OUTPUT -p tcp -j TRELLIS_OUTPUT',
      '-A TRELLIS_INBOUND -p tcp -m tcp --dport 15021 -j RETURN',
      '-A TRELLIS_INBOUND -p tcp -j TRELLIS_IN_REDIRECT',
      '-A TRELLIS_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
      '-A TRELLIS_OUTPUT -m owner --uid-owner 1337 -j RETURN',
      '-A TRELLIS_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN',
      '-A TRELLIS_OUTPUT -j TRELLIS_REDIRECT',
      '-A TRELLIS_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
    ]) {
      t.true(saved.includes(line), `${line} in\n${r.stdout}`);
    }
  });
}

test('trellis iptables --apply --backend auto picks the backend that holds rules, nft otherwise', (t) => {
  if (!requireIptables(t, ['iptables-nft-save', 'iptables-legacy-save', 'iptables-legacy'])) return;
  const fresh = inNetns('node --import tsx control-plane/main.ts iptables --apply --test');
  t.is(fresh.code, 0, fresh.stderr);
  t.regex(fresh.stderr, /checked with iptables-nft-restore \(backend nft\)/);
  const legacy = inNetns(
    'iptables-legacy -t nat -A OUTPUT -p udp -j RETURN && node --import tsx control-plane/main.ts iptables --apply --test',
  );
  t.is(legacy.code, 0, legacy.stderr);
  t.regex(legacy.stderr, /checked with iptables-legacy-restore \(backend legacy\)/);
});

test("trellis iptables: a bad flag exits 2 naming it; a refused apply exits 1 with iptables-restore's message", (t) => {
  const bad = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'control-plane/main.ts', 'iptables', '--exclude-outbound-ip-ranges', '10.0.0.0/40'],
    {
      cwd: repoRoot,
      encoding: 'utf8',
    },
  );
  t.is(bad.status, 2);
  t.regex(bad.stderr, /"10\.0\.0\.0\/40" is not an IPv4 address or CIDR/);
  if (!requireIptables(t, ['iptables-nft-restore'])) return;
  // Without CAP_NET_ADMIN the kernel refuses: root with every capability dropped (root, so it can read the
  // checkout whatever its mode: a fresh clone under `mktemp -d` is 0700).
  if (!which('setpriv')) return;
  const r = inNetns(
    'setpriv --bounding-set=-all --inh-caps=-all --securebits=+noroot,+noroot_locked,+no_setuid_fixup,+no_setuid_fixup_locked node --import tsx control-plane/main.ts iptables --apply --backend nft',
  );
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /^trellis iptables: iptables-nft-restore --noflush exited \d+: /m);
});

test('the legacy backend needs a writable /run (its lock file): why trellis-init keeps a writable root', (t) => {
  if (!requireIptables(t, ['iptables-nft-restore', 'iptables-legacy-restore'])) return;
  const r = spawnSync(
    'unshare',
    [
      '-m',
      '-n',
      'sh',
      '-c',
      'mount -t tmpfs -o ro tmpfs /run && iptables-legacy-restore --noflush --test; echo "legacy=$?"; iptables-nft-restore --noflush --test < /dev/null; echo "nft=$?"',
    ],
    { input: captureRules(), encoding: 'utf8', timeout: 60_000 },
  );
  t.regex(r.stderr, /can't open lock file \/run\/xtables\.lock/);
  t.regex(r.stdout, /legacy=[1-9]/);
  t.regex(r.stdout, /nft=0/);
});
