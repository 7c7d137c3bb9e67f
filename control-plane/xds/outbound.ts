// Backpressure for one stream's responses. grpc-js calls a write's callback once the message has left the
// HTTP/2 stream (the peer's flow-control window had room), so the bytes whose callback has not run yet are
// what the stream holds in memory. Above `maxQueuedBytes` the stream is blocked: new responses are not
// built; the types that wanted one are remembered (with whether the response must be complete), and once
// the stream drains each of them gets a single response built from the config of that moment. A stalled
// client therefore costs at most `maxQueuedBytes` plus one response, however many pushes pass meanwhile.

export interface OutboundSink<Message extends { readonly byteLength: number }> {
  /** Writes one message; `done` runs once it has been flushed to the network. */
  write(message: Message, done: () => void): void;
}

export class Outbound<Message extends { readonly byteLength: number }> {
  private queued = 0;
  private inFlight = 0;
  private closed = false;
  /** Type URL → whether its deferred response must be a full resync (`force`). */
  private readonly deferred = new Map<string, boolean>();

  constructor(
    private readonly sink: OutboundSink<Message>,
    private readonly maxQueuedBytes: number,
    /** Called when the stream drains below the cap with deferred types waiting. */
    private readonly onDrain: () => void,
    /** Told every change of the queued bytes (a metric). */
    private readonly onQueued: (delta: number) => void = () => undefined,
  ) {}

  /** Bytes written and not yet flushed. */
  get queuedBytes(): number {
    return this.queued;
  }

  /** Messages written and not yet flushed. */
  get queuedMessages(): number {
    return this.inFlight;
  }

  /** Whether new responses must wait for a drain. */
  get blocked(): boolean {
    return this.queued >= this.maxQueuedBytes;
  }

  /** Whether some type waits for the stream to drain. */
  get hasDeferred(): boolean {
    return this.deferred.size > 0;
  }

  /** Types waiting for the stream to drain. */
  get deferredTypes(): readonly string[] {
    return [...this.deferred.keys()];
  }

  get deferredCount(): number {
    return this.deferred.size;
  }

  /** Remembers that `typeUrl` wants a response; returns true if it already did (a push was coalesced). */
  defer(typeUrl: string, force: boolean): boolean {
    const known = this.deferred.get(typeUrl);
    this.deferred.set(typeUrl, force || known === true);
    return known !== undefined;
  }

  /** Forgets a deferred type; returns its `force`, or undefined if it was not deferred. */
  take(typeUrl: string): boolean | undefined {
    const force = this.deferred.get(typeUrl);
    this.deferred.delete(typeUrl);
    return force;
  }

  write(message: Message): void {
    const size = message.byteLength;
    this.queued += size;
    this.inFlight++;
    this.onQueued(size);
    this.sink.write(message, () => {
      if (this.closed) return;
      this.queued -= size;
      this.inFlight--;
      this.onQueued(-size);
      if (!this.blocked && this.deferred.size > 0) this.onDrain();
    });
  }

  /** The stream closed: whatever is still queued is dropped with it. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onQueued(-this.queued);
    this.queued = 0;
    this.inFlight = 0;
    this.deferred.clear();
  }
}
