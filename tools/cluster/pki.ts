// The PKI of a cluster, made with openssl: one CA that signs the apiserver's serving certificate, the
// components' client certificates, and any webhook serving certificates a test needs. EC P-256 keys,
// valid 7 days. Moved here from test/helpers/cluster.ts (the test helpers re-export ServingCert).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface ServingCert {
  readonly certPem: string;
  readonly keyPem: string;
  /** PEM of the CA that signed it: use as a webhook's caBundle (base64 of this) or a client's CA. */
  readonly caPem: string;
  readonly certFile: string;
  readonly keyFile: string;
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  try {
    await execFileAsync('openssl', [...args], { cwd });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr ?? e.message}`, { cause: err });
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '7'];

export async function makeCa(pkiDir: string): Promise<{ certFile: string; keyFile: string }> {
  const certFile = path.join(pkiDir, 'ca.crt');
  const keyFile = path.join(pkiDir, 'ca.key');
  await openssl(
    [
      'req',
      '-x509',
      ...EC,
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-subj',
      '/CN=trellis-test-ca',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    pkiDir,
  );
  return { certFile, keyFile };
}

export async function signCert(
  pkiDir: string,
  ca: { certFile: string; keyFile: string },
  name: string,
  opts: {
    cn: string;
    ips?: readonly string[];
    dnsNames?: readonly string[];
    usage: 'serverAuth' | 'clientAuth';
    org?: string;
  },
): Promise<ServingCert> {
  const certFile = path.join(pkiDir, `${name}.crt`);
  const keyFile = path.join(pkiDir, `${name}.key`);
  const san = [...(opts.ips ?? []).map((ip) => `IP:${ip}`), ...(opts.dnsNames ?? []).map((d) => `DNS:${d}`)];
  const subj = `/CN=${opts.cn}${opts.org ? `/O=${opts.org}` : ''}`;
  await openssl(
    [
      'req',
      '-x509',
      ...EC,
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-subj',
      subj,
      '-CA',
      ca.certFile,
      '-CAkey',
      ca.keyFile,
      '-addext',
      'basicConstraints=critical,CA:FALSE',
      '-addext',
      'keyUsage=critical,digitalSignature',
      '-addext',
      `extendedKeyUsage=${opts.usage}`,
      ...(san.length ? ['-addext', `subjectAltName=${san.join(',')}`] : []),
    ],
    pkiDir,
  );
  return {
    certPem: fs.readFileSync(certFile, 'utf8'),
    keyPem: fs.readFileSync(keyFile, 'utf8'),
    caPem: fs.readFileSync(ca.certFile, 'utf8'),
    certFile,
    keyFile,
  };
}
