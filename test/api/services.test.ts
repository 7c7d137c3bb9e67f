// api/services.ts writes and reads the CA's two messages with protobuf's wire primitives: the bytes must be
// what the schema generated from control-plane/ca/ca.proto writes and reads.
import test from 'ava';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import {
  decodeCreateCertificateRequest,
  decodeCreateCertificateResponse,
  encodeCreateCertificateRequest,
  encodeCreateCertificateResponse,
} from '../../api/services.js';
import {
  CertificateService,
  CreateCertificateRequestSchema,
  CreateCertificateResponseSchema,
} from '../../control-plane/envoy/gen/trellis/ca/v1/ca_pb.js';
import { CA_SERVICE_NAME, certificateServiceDefinition } from '../../api/services.js';

const CSR = '-----BEGIN CERTIFICATE REQUEST-----\nMIIBtest\n-----END CERTIFICATE REQUEST-----\n';

test('the service path is the one in ca.proto', (t) => {
  t.is(CA_SERVICE_NAME, CertificateService.typeName);
  t.is(certificateServiceDefinition.CreateCertificate.path, `/${CertificateService.typeName}/CreateCertificate`);
});

for (const validitySeconds of [0n, 1n, 86_400n, 604_800n, 2n ** 40n]) {
  test(`a request (validity ${validitySeconds} s) encodes as the generated schema does, and reads back both ways`, (t) => {
    const generated = toBinary(
      CreateCertificateRequestSchema,
      create(CreateCertificateRequestSchema, { csr: CSR, validitySeconds }),
    );
    const ours = encodeCreateCertificateRequest({ csr: CSR, validitySeconds });
    t.deepEqual(Buffer.from(ours), Buffer.from(generated));
    t.deepEqual(decodeCreateCertificateRequest(generated), { csr: CSR, validitySeconds });
    const back = fromBinary(CreateCertificateRequestSchema, ours);
    t.is(back.csr, CSR);
    t.is(back.validitySeconds, validitySeconds);
  });
}

test('an empty request is empty bytes and reads back as the defaults', (t) => {
  t.is(encodeCreateCertificateRequest({ csr: '', validitySeconds: 0n }).length, 0);
  t.deepEqual(decodeCreateCertificateRequest(new Uint8Array()), { csr: '', validitySeconds: 0n });
});

test('a response keeps every certificate of the chain in order, as the generated schema does', (t) => {
  const certChain = ['leaf', 'intermediate', 'root'].map(
    (n) => `-----BEGIN CERTIFICATE-----\n${n}\n-----END CERTIFICATE-----\n`,
  );
  const generated = toBinary(CreateCertificateResponseSchema, create(CreateCertificateResponseSchema, { certChain }));
  t.deepEqual(Buffer.from(encodeCreateCertificateResponse({ certChain })), Buffer.from(generated));
  t.deepEqual(decodeCreateCertificateResponse(generated), { certChain });
  t.deepEqual(
    fromBinary(CreateCertificateResponseSchema, encodeCreateCertificateResponse({ certChain })).certChain,
    certChain,
  );
});

test('fields the reader does not know are skipped, as a newer peer may send them', (t) => {
  const w = new BinaryWriter();
  w.tag(7, WireType.Varint).uint32(5);
  w.tag(1, WireType.LengthDelimited).string(CSR);
  w.tag(9, WireType.LengthDelimited).string('future');
  w.tag(2, WireType.Varint).int64(60n);
  w.tag(11, WireType.Bit64).fixed64(1n);
  t.deepEqual(decodeCreateCertificateRequest(w.finish()), { csr: CSR, validitySeconds: 60n });
});

test('truncated bytes are an error, not a partial message', (t) => {
  const bytes = encodeCreateCertificateResponse({ certChain: ['a certificate'] });
  t.throws(() => decodeCreateCertificateResponse(bytes.subarray(0, bytes.length - 3)));
});
