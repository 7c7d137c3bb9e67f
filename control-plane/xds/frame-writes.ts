// gRPC frames of xDS responses written as the pieces they are made of, large cached bytes referenced and
// not copied.
//
// grpc-js (1.14, server-interceptors.js `BaseServerInterceptingCall.serializeMessage`) frames every message
// it sends by allocating a buffer of the message's size + 5 and copying the message into it. A response
// here is mostly cached bytes shared by many streams (response.ts): in a mesh of 1,000 Services a
// sidecar's whole CDS set is 2.5 MB and the same bytes go to every Pod of its workload. Copied per stream,
// a connect storm of 1,200 proxies allocated and filled 6 GB of fresh buffers: above glibc's mmap threshold
// each is new pages, faulted in and zeroed by the kernel, and each is memory V8 counts against its
// external-memory limit until a full GC frees it (the storm's CPU profile: a third of the busy time in GC,
// a fifth in that copy; peak RSS 3.6 GB).
//
// `installFrameWrites` replaces that method for responses of at least REFERENCE_MIN_BYTES: the frame is
// written to the HTTP/2 stream as chunks (frameChunks): the 5-byte prefix with the small pieces that follow
// it copied together, and each large piece as the very bytes the cache holds. Node's HTTP/2 session hands
// DATA payloads to the socket by reference, so the only copy left is the kernel's. The chunks but the last
// are written (corked, so they go out as one writev) before grpc-js writes the last one, which it receives as
// if it were the whole frame; Writable callbacks run in order, so grpc-js's write callback (which the
// stream's backpressure accounting, outbound.ts, waits on) still runs only once the whole frame has left.
//
// It relies on three members of grpc-js's call that are not public API: `stream`, `maybeSendMetadata` and
// `serializeMessage` itself. If a grpc-js version lacks them, nothing is installed and responses are framed
// by grpc-js's copy as before (response.ts FramedResponse). test/xds/frame-writes.test.ts shows the install
// took effect with the pinned version, and test/xds/wire-bytes.test.ts compares every byte real grpc-js
// clients receive on both paths.
import type { Writable } from 'node:stream';
import { BaseServerInterceptingCall } from '@grpc/grpc-js/build/src/server-interceptors.js';
import { nonceField, REFERENCE_MIN_BYTES, Response } from './response.js';

// Pieces at least REFERENCE_MIN_BYTES large are written by reference; smaller ones are copied together with
// their neighbours.
export { REFERENCE_MIN_BYTES };

/** The gRPC length prefix (uncompressed flag, big-endian length) of a message of `length` bytes. */
function framePrefix(length: number): Buffer {
  const prefix = Buffer.allocUnsafe(5);
  prefix[0] = 0;
  prefix.writeUInt32BE(length, 1);
  return prefix;
}

/** Small byte arrays joined into one buffer. */
function joined(parts: readonly Uint8Array[], size: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/**
 * The gRPC frame of `response` (prefix, body, nonce) as chunks whose concatenation is the frame: runs of
 * pieces smaller than `referenceMin` copied into one buffer each, larger pieces as they are (not copied).
 */
export function frameChunks(response: Response, referenceMin = REFERENCE_MIN_BYTES): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let run: Uint8Array[] = [framePrefix(response.byteLength)];
  let runBytes = 5;
  const flush = (): void => {
    if (run.length > 0) chunks.push(joined(run, runBytes));
    run = [];
    runBytes = 0;
  };
  for (const piece of response.pieces) {
    if (piece.byteLength >= referenceMin) {
      flush();
      chunks.push(piece);
    } else if (piece.byteLength > 0) {
      run.push(piece);
      runBytes += piece.byteLength;
    }
  }
  if (response.nonce !== undefined) {
    const nonce = nonceField(response.nonce);
    run.push(nonce);
    runBytes += nonce.byteLength;
  }
  flush();
  return chunks;
}

/** The members of grpc-js's server call this relies on (private in its typings). */
interface GrpcServerCall {
  readonly stream: Writable;
  maybeSendMetadata(): void;
  serializeMessage(value: unknown): Buffer;
}

let installed: boolean | undefined;
let referencedBytes = 0;

/** Response bytes written by reference so far (tests, benchmarks): what grpc-js would otherwise have copied. */
export function frameBytesReferenced(): number {
  return referencedBytes;
}

/**
 * Makes grpc-js servers in this process write large Responses as chunks (see the top of this file). Once
 * per process; returns whether it is in effect.
 */
export function installFrameWrites(): boolean {
  if (installed !== undefined) return installed;
  const proto = BaseServerInterceptingCall.prototype as unknown as Partial<GrpcServerCall>;
  const original = proto.serializeMessage;
  if (typeof original !== 'function' || typeof proto.maybeSendMetadata !== 'function') return (installed = false);
  proto.serializeMessage = function serializeMessage(this: GrpcServerCall, value: unknown): Buffer {
    const stream = this.stream as Writable | undefined;
    if (!(value instanceof Response) || value.byteLength < REFERENCE_MIN_BYTES || !stream)
      return original.call(this, value);
    const chunks = frameChunks(value);
    if (chunks.length === 1) return chunks[0] as Buffer; // nothing large: one copy, as grpc-js's own
    this.maybeSendMetadata(); // the headers go before the first DATA frame (grpc-js sends them lazily)
    stream.cork();
    for (const chunk of chunks) if (chunk.byteLength >= REFERENCE_MIN_BYTES) referencedBytes += chunk.byteLength;
    for (let i = 0; i < chunks.length - 1; i++) stream.write(chunks[i]!);
    // grpc-js writes the last chunk right after this returns (synchronously); then all of them go out.
    process.nextTick(() => stream.uncork());
    return chunks[chunks.length - 1] as Buffer;
  };
  return (installed = true);
}
