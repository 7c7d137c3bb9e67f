// An ADS client that stops reading: a raw HTTP/2 stream (node:http2, no grpc-js) that sends its requests
// and then leaves the responses unread, so the server's HTTP/2 flow-control window fills and the server's
// writes stay buffered. `resume()` reads again; the responses are decoded from the gRPC framing.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import http2 from 'node:http2';
import {
  DeltaDiscoveryRequestSchema,
  DeltaDiscoveryResponseSchema,
  type DeltaDiscoveryResponse,
} from '../../control-plane/envoy/gen/envoy/service/discovery/v3/discovery_pb.js';
import type { DeltaRequestInit } from './ads-client.js';

/** One gRPC message: a 5-byte prefix (not compressed, big-endian length) and the bytes. */
function frame(bytes: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + bytes.byteLength);
  out.writeUInt32BE(bytes.byteLength, 1);
  out.set(bytes, 5);
  return out;
}

export class StalledDeltaStream {
  private readonly session: http2.ClientHttp2Session;
  private readonly stream: http2.ClientHttp2Stream;
  private buffered = Buffer.alloc(0);
  private readonly received: DeltaDiscoveryResponse[] = [];
  private readonly listeners = new Set<() => void>();

  /** Opens the stream, sends `requests` and stops reading at once. */
  constructor(target: string, requests: readonly DeltaRequestInit[]) {
    this.session = http2.connect(`http://${target}`);
    this.session.on('error', () => undefined);
    this.stream = this.session.request({
      ':method': 'POST',
      ':path': '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    this.stream.on('error', () => undefined);
    this.stream.pause();
    this.stream.on('data', (chunk: Buffer) => this.onData(chunk));
    this.stream.pause();
    for (const request of requests) {
      this.stream.write(frame(toBinary(DeltaDiscoveryRequestSchema, create(DeltaDiscoveryRequestSchema, request))));
    }
  }

  /** Reads again from now on. */
  resume(): void {
    this.stream.resume();
  }

  /** Waits (with a deadline) for a response that satisfies `match`, among those received so far and later. */
  async waitFor(match: (response: DeltaDiscoveryResponse) => boolean, timeoutMs = 10_000): Promise<void> {
    if (this.received.some(match)) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(new Error(`no matching response within ${timeoutMs} ms (${this.received.length} received)`));
      }, timeoutMs);
      const check = (): void => {
        if (!this.received.some(match)) return;
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve();
      };
      this.listeners.add(check);
    });
  }

  close(): void {
    this.stream.close();
    this.session.close();
  }

  private onData(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    while (this.buffered.byteLength >= 5) {
      const length = this.buffered.readUInt32BE(1);
      if (this.buffered.byteLength < 5 + length) break;
      this.received.push(fromBinary(DeltaDiscoveryResponseSchema, this.buffered.subarray(5, 5 + length)));
      this.buffered = this.buffered.subarray(5 + length);
    }
    for (const listener of [...this.listeners]) listener();
  }
}
