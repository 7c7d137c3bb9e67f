// The proxies of `xds-mesh` in the Go load generator (tools/peers/xds-load, --mesh; built by `npm run
// peers`): the same streams as mesh-sim.ts (distinct pods, Envoy's subscription order, delta), driven by
// JSON commands. Receiving a mesh's config costs a Node client more CPU than the control plane spends
// sending it, and both share the machine's cores, so with Node clients the rounds measure mostly the
// clients; Go's grpc and protobuf receive the same bytes for a fraction of that.
import { GoProcess, type GoEvent } from './go-peers.js';
import type { Expectation, Fleet, SimNode, StartedRound } from './mesh-sim.js';

type Event<K extends GoEvent['event']> = Extract<GoEvent, { event: K }>;

const connected =
  (batch: number) =>
  (e: GoEvent): e is Event<'connected'> =>
    e.event === 'connected' && e.batch === batch;
const watching =
  (round: number) =>
  (e: GoEvent): e is Event<'watching'> =>
    e.event === 'watching' && e.round === round;
const ended =
  (round: number) =>
  (e: GoEvent): e is Event<'round'> =>
    e.event === 'round' && e.round === round;
const counters = (e: GoEvent): e is Event<'counters'> => e.event === 'counters';

export class GoMeshFleet implements Fleet {
  private readonly process: GoProcess;
  private batches = 0;
  private rounds = 0;

  /** `window`: the streams' and connections' HTTP/2 receive window in bytes (0: grpc-go's own). */
  constructor(binary: string, target: string, connections: number, window = 0) {
    this.process = GoProcess.spawn('xds-load (mesh)', binary, [
      '--mesh',
      '--target',
      target,
      '--connections',
      String(connections),
      '--window',
      String(window),
    ]);
  }

  get errors(): readonly string[] {
    return this.process.errors;
  }

  /** Sends a command; returns the index of the first event that can answer it. */
  private send(command: object): number {
    const since = this.process.events.length;
    this.process.command(JSON.stringify(command));
    return since;
  }

  async connect(nodes: readonly SimNode[], timeoutMs: number): Promise<number[]> {
    const batch = ++this.batches;
    const since = this.send({ cmd: 'connect', batch, nodes });
    return (await this.process.waitFor(connected(batch), timeoutMs, since)).ms;
  }

  async startRound(expect: Expectation, timeoutMs: number): Promise<StartedRound> {
    const round = ++this.rounds;
    const since = this.send(
      expect.kind === 'eds'
        ? { cmd: 'round', round, kind: 'eds', targets: Object.fromEntries(expect.targets) }
        : { cmd: 'round', round, kind: 'type', typeUrl: expect.typeUrl },
    );
    await this.process.waitFor(watching(round), 30_000, since);
    const t0 = performance.now();
    const t0Epoch = performance.timeOrigin + t0;
    const end = this.process.waitFor(ended(round), timeoutMs, since).catch(() => {
      this.send({ cmd: 'cancel' }); // the timeout: the round ends with what arrived
      return this.process.waitFor(ended(round), 30_000, since);
    });
    const done = end.then((e) => ({
      complete: e.complete,
      ackedMs: e.ackedAt.map((at) => (at === null ? NaN : at - t0Epoch)),
    }));
    return { t0, done };
  }

  private async counters(): Promise<Event<'counters'>> {
    return this.process.waitFor(counters, 30_000, this.send({ cmd: 'counters' }));
  }

  async typeCounts(): Promise<ReadonlyMap<string, number>> {
    return new Map(Object.entries((await this.counters()).byType));
  }

  async totalBytes(): Promise<number> {
    return (await this.counters()).bytes;
  }

  close(): Promise<void> {
    return this.process.stop();
  }
}
