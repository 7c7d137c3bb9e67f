// The bookkeeping behind the Programmed condition and the convergence histogram, on a real PushController
// with a manual clock: a stream's answer state (answers.ts), the per-object summary and its rate limit
// (programmed.ts), the condition text (programmed-status.ts), and when a convergence round is observed
// (convergence.ts). The streams here are the controller's consumers reduced to what it reads (proxy,
// config, answerView()); the protocol itself is covered by test/kube/programmed.test.ts with real clients.
import test from 'ava';
import { Registry } from 'prom-client';
import { silentLogger } from '../../control-plane/logger.js';
import { XdsMetrics } from '../../control-plane/metrics.js';
import type { ResourceStatus } from '../../control-plane/model/snapshot.js';
import { programmedCondition } from '../../control-plane/programmed-status.js';
import { answers, awaitsAnswer, type AnswerView } from '../../control-plane/xds/answers.js';
import { prng } from '../helpers/prng.js';
import { ConvergenceTracker, convergenceMetrics } from '../../control-plane/xds/convergence.js';
import type { ProxyInfo } from '../../control-plane/xds/node.js';
import { ProgrammedTracker } from '../../control-plane/xds/programmed.js';
import { PushController, type ConfigConsumer, type ProxyConfig } from '../../control-plane/xds/push-controller.js';
import { ManualClock } from '../helpers/manual-clock.js';

type TypeView = AnswerView['types'][number];

const sent = (type: string, nonce: string, answered = '', nack?: { nonce: string; at: string }): TypeView => ({
  type,
  sentNonce: nonce,
  answeredNonce: answered,
  lastNack: nack ? { version: 'v', nonce: nack.nonce, message: `bad ${type}`, at: nack.at } : undefined,
});

test('answers: programmed when every response is answered; pending; rejected names the earliest NACK', (t) => {
  t.deepEqual(answers({ deferredTypes: [], types: [sent('CDS', 'n1', 'n1'), sent('LDS', '')] }), {
    state: 'programmed',
  });
  t.deepEqual(answers({ deferredTypes: [], types: [sent('CDS', 'n2', 'n1')] }), { state: 'pending' });
  t.deepEqual(answers({ deferredTypes: ['EDS'], types: [sent('CDS', 'n1', 'n1')] }), { state: 'pending' });
  const rejected = answers({
    deferredTypes: [],
    types: [
      sent('RDS', 'n5', 'n5', { nonce: 'n5', at: '2026-01-01T00:00:02.000Z' }),
      sent('CDS', 'n4', 'n4', { nonce: 'n4', at: '2026-01-01T00:00:01.000Z' }),
      sent('LDS', 'n6', 'n3'),
    ],
  });
  t.deepEqual(rejected, { state: 'rejected', type: 'CDS', message: 'bad CDS', at: '2026-01-01T00:00:01.000Z' });
  // A NACK of an older response no longer counts once a newer one was sent.
  t.deepEqual(answers({ deferredTypes: [], types: [sent('CDS', 'n7', 'n4', { nonce: 'n4', at: 'x' })] }), {
    state: 'pending',
  });
});

const status = (over: Partial<ResourceStatus> = {}): ResourceStatus => ({
  kind: 'VirtualService',
  namespace: 'shop',
  name: 'reviews',
  generation: 4,
  origin: {},
  accepted: true,
  reason: 'Accepted',
  message: 'accepted',
  issues: [],
  ...over,
});

test('programmedCondition: True, Rejected, Pending, NoProxies, NotAccepted; for every policy kind', (t) => {
  t.deepEqual(programmedCondition(status(), { proxies: 12, programmed: 12, pending: 0, rejected: 0 }), {
    type: 'Programmed',
    status: 'True',
    reason: 'Programmed',
    message: 'programmed on 12/12 proxies',
    observedGeneration: 4,
  });
  const rejected = programmedCondition(status(), {
    proxies: 12,
    programmed: 10,
    pending: 0,
    rejected: 2,
    firstRejection: { proxy: 'cart-0.shop', type: 'CDS', message: 'unsupported lb_policy: RING_HASH', at: 'x' },
  });
  t.is(rejected.status, 'False');
  t.is(rejected.reason, 'Rejected');
  t.is(
    rejected.message,
    'rejected by proxy cart-0.shop (CDS): unsupported lb_policy: RING_HASH; programmed on 10/12 proxies',
  );
  const pending = programmedCondition(status(), { proxies: 3, programmed: 1, pending: 2, rejected: 0 });
  t.is(pending.status, 'Unknown');
  t.is(pending.message, 'programmed on 1/3 proxies; 2 awaiting an answer');
  t.is(programmedCondition(status(), undefined).reason, 'NoProxies');
  t.is(programmedCondition(status({ accepted: false, reason: 'Invalid' }), undefined).reason, 'NotAccepted');
  for (const kind of ['AuthorizationPolicy', 'PeerAuthentication', 'Sidecar', 'ServiceEntry'] as const) {
    t.is(programmedCondition(status({ kind }), undefined).reason, 'NoProxies', kind);
    t.is(programmedCondition(status({ kind }), { proxies: 2, programmed: 2, pending: 0, rejected: 0 }).status, 'True');
  }
});

/** A consumer as the controller sees a stream: proxy, config, and what its client answered. */
class FakeStream implements ConfigConsumer {
  config: ProxyConfig | undefined = { sets: new Map(), hash: 'h0' };
  view: AnswerView = { deferredTypes: [], types: [] };
  constructor(readonly proxy: ProxyInfo) {}
  get configHash(): string | undefined {
    return this.config?.hash;
  }
  onConfig(config: ProxyConfig): void {
    this.config = config;
  }
  answerView(): AnswerView {
    return this.view;
  }
  awaitsAnswer(): boolean {
    return awaitsAnswer(this.view.deferredTypes.length > 0, this.view.types);
  }
}

const proxy = (id: string): ProxyInfo => ({
  id,
  cluster: '',
  namespace: 'shop',
  serviceAccount: 'default',
  labels: {},
  instanceIps: [],
  proxyType: 'grpc',
  trustDomain: 'cluster.local',
  locality: { region: '', zone: '', subZone: '' },
  userAgent: '',
});

function controller(sources: (p: ProxyInfo) => readonly string[]): PushController<unknown> {
  return new PushController<unknown>(
    { current: () => ({}), onChange: () => () => undefined, ready: () => true },
    { generate: () => new Map() },
    { debounce: { quietMs: 10, maxMs: 100 }, metrics: new XdsMetrics(), logger: silentLogger, sources },
  );
}

test('ProgrammedTracker: per-object counts, the first rejection, and at most one recomputation per interval', (t) => {
  const clock = new ManualClock();
  const c = controller((p) =>
    p.id === 'c.shop' ? ['VirtualService/shop/a'] : ['VirtualService/shop/a', 'DestinationRule/shop/b'],
  );
  const tracker = new ProgrammedTracker({ controller: c, clock, intervalMs: 3_000 });
  const changes: string[][] = [];
  tracker.onChange((keys) => changes.push([...keys].sort()));
  tracker.start();
  const a = new FakeStream(proxy('a.shop'));
  const b = new FakeStream(proxy('b.shop'));
  const d = new FakeStream(proxy('c.shop'));
  a.view = { deferredTypes: [], types: [sent('CDS', 'n1', 'n1')] };
  b.view = { deferredTypes: [], types: [sent('CDS', 'n2', 'n1')] };
  d.view = { deferredTypes: [], types: [sent('CDS', 'n3', 'n3')] };
  for (const s of [a, b, d]) c.attach(s);
  clock.advance(0);
  t.deepEqual(tracker.get('VirtualService/shop/a'), { proxies: 3, programmed: 2, pending: 1, rejected: 0 });
  t.deepEqual(tracker.get('DestinationRule/shop/b'), { proxies: 2, programmed: 1, pending: 1, rejected: 0 });
  t.deepEqual(changes, [['DestinationRule/shop/b', 'VirtualService/shop/a']]);

  // b NACKs: nothing is recomputed before the interval has passed since the last time.
  b.view = { deferredTypes: [], types: [sent('CDS', 'n2', 'n2', { nonce: 'n2', at: '2026-01-01T00:00:00.000Z' })] };
  c.answered(b);
  clock.advance(2_999);
  t.is(tracker.get('VirtualService/shop/a')!.pending, 1);
  clock.advance(1);
  t.deepEqual(tracker.get('VirtualService/shop/a'), {
    proxies: 3,
    programmed: 2,
    pending: 0,
    rejected: 1,
    firstRejection: { proxy: 'b.shop', type: 'CDS', message: 'bad CDS', at: '2026-01-01T00:00:00.000Z' },
  });
  t.is(changes.length, 2);

  // A stream that goes away drops out; an unchanged summary reports nothing.
  c.detach(d);
  clock.advance(3_000);
  t.is(tracker.get('VirtualService/shop/a')!.proxies, 2);
  t.deepEqual(changes[2], ['VirtualService/shop/a']);
  c.answered(a);
  clock.advance(3_000);
  t.is(changes.length, 3);
  tracker.stop();
  t.deepEqual(clock.pending(), []);
});

test('convergence: a round is observed when the last pushed stream answers; a NACK and a disconnect end it too', async (t) => {
  const clock = new ManualClock();
  const registry = new Registry();
  const metrics = convergenceMetrics(registry);
  const tracker = new ConvergenceTracker(metrics, clock);
  const count = async (): Promise<number> =>
    (await metrics.seconds.get()).values.find((v) => v.metricName === 'trellis_xds_convergence_seconds_count')!.value;
  const a = new FakeStream(proxy('a.shop'));
  const b = new FakeStream(proxy('b.shop'));
  a.view = { deferredTypes: [], types: [sent('RDS', 'n1')] };
  b.view = { deferredTypes: [], types: [sent('RDS', 'n2')] };

  tracker.changed();
  clock.advance(100);
  tracker.changed(); // same burst: the clock started at the first
  const round = tracker.cycleStarted();
  tracker.pushed(round, a);
  tracker.pushed(round, b);
  tracker.cycleEnded(round);
  t.is(tracker.openRounds, 1);
  clock.advance(400);
  a.view = { deferredTypes: [], types: [sent('RDS', 'n1', 'n1')] };
  tracker.answered(a);
  t.is(await count(), 0, 'b has not answered');
  clock.advance(500);
  b.view = { deferredTypes: [], types: [sent('RDS', 'n2', 'n2', { nonce: 'n2', at: 'x' })] };
  tracker.answered(b); // a NACK is an answer
  t.is(await count(), 1);
  const sum = (await metrics.seconds.get()).values.find((v) => v.metricName === 'trellis_xds_convergence_seconds_sum')!;
  t.is(sum.value, 1, 'from the first change of the burst to the last answer: 1 s');

  // A stream that disconnects ends its round; a cycle that leaves nobody waiting observes nothing.
  tracker.changed();
  const next = tracker.cycleStarted();
  a.view = { deferredTypes: [], types: [sent('RDS', 'n3', 'n1')] };
  tracker.pushed(next, a);
  tracker.cycleEnded(next);
  tracker.detached(a);
  t.is(await count(), 2);
  tracker.changed();
  const empty = tracker.cycleStarted();
  tracker.pushed(empty, b); // b has nothing outstanding
  tracker.cycleEnded(empty);
  t.is(await count(), 2);
  t.is(tracker.cycleStarted(), undefined, 'no change since: a direct push carries none');
});

test('awaitsAnswer (what convergence asks of every stream) is answers() being pending, for any view', (t) => {
  const random = prng(77);
  const nonces = ['', '1', '2'];
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  for (let i = 0; i < 2_000; i++) {
    const view: AnswerView = {
      deferredTypes: random() < 0.2 ? ['CDS'] : [],
      types: Array.from({ length: Math.floor(random() * 4) }, (_, k) => {
        const sentNonce = pick(nonces);
        const nack = random() < 0.3 ? pick(nonces) : undefined;
        return {
          type: ['CDS', 'EDS', 'LDS', 'RDS'][k]!,
          sentNonce,
          answeredNonce: pick(nonces),
          lastNack: nack === undefined ? undefined : { version: 'v', nonce: nack, message: 'no', at: `t${k}` },
        };
      }),
    };
    t.is(
      awaitsAnswer(view.deferredTypes.length > 0, view.types),
      answers(view).state === 'pending',
      JSON.stringify(view),
    );
  }
});
