// Typed refusals. A CSR refusal is the caller's fault (PERMISSION_DENIED on the wire, with the reason); a
// plug-in CA error is the operator's (the control plane does not start) and names the file.

export type CsrRefusalReason =
  /** Not a PEM PKCS#10 request, or not parseable. */
  | 'malformed-csr'
  /** The request's self-signature does not verify with its own public key. */
  | 'bad-signature'
  /** Key type or size not accepted (EC P-256/P-384, RSA >= 2048). */
  | 'unsupported-key'
  /** basicConstraints CA=true in the extension request. */
  | 'ca-request'
  /** No subjectAltName in the extension request. */
  | 'missing-san'
  /** More than one SAN, or a non-URI one (DNS, IP, email, …). */
  | 'extra-san'
  /** Exactly one URI SAN, but not the authenticated SPIFFE ID. */
  | 'foreign-san';

export class CsrRefusal extends Error {
  override readonly name = 'CsrRefusal';
  constructor(
    readonly reason: CsrRefusalReason,
    readonly detail: string,
  ) {
    super(`${reason}: ${detail}`);
  }
}

/** A plug-in CA file that is missing, unreadable or inconsistent; `file` is the file's name or path. */
export class PluginCaError extends Error {
  override readonly name = 'PluginCaError';
  constructor(
    readonly file: string,
    readonly detail: string,
  ) {
    super(`${file}: ${detail}`);
  }
}
