/**
 * `serve --secure-local`: a loopback listener that only its owner can use. A plain loopback port
 * that injects credentials lends them to every user of the machine; in this mode the listener
 * serves TLS with a certificate of its own CA and wants a random bearer token, both kept in a
 * directory only the owner can open, and `serve` writes a kubeconfig (mode 0600) holding that CA
 * and that token: whoever can read the kubeconfig gets in, no one else.
 *
 * The material is reused from one start to the next, so that a kubeconfig written earlier (or
 * copied into another) stays valid. It is made anew when a file is missing, unreadable, readable
 * by others than its owner, or the certificate is expired or about to be. The CA's private key is
 * never written: it signs the server certificate once, so nothing on disk can mint another
 * certificate that the kubeconfig would trust.
 */
import { createPrivateKey, X509Certificate as NodeCertificate, randomBytes, webcrypto } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { replacePrivately } from '../io/private-file.js';
import { fileProblem } from './flag-file.js';
import { buildShimKubeconfig, renderKubeconfig, writePrivate } from './shim-kubeconfig.js';

/** The files of the mode, in its directory. */
export interface SecureLocalFiles {
  dir: string;
  /** The CA's certificate (the kubeconfig's certificate-authority-data). */
  ca: string;
  /** The listener's certificate and key (--tls-cert, --tls-key). */
  cert: string;
  key: string;
  /** The listener's token (--token-file). */
  token: string;
  /** Where the kubeconfig goes unless --write-kubeconfig says otherwise. */
  kubeconfig: string;
}

/** The names the certificate is good for: what kubectl may have as the server's host. */
export const SECURE_LOCAL_NAMES = { ips: ['127.0.0.1', '::1'], dns: ['localhost'] } as const;

/** How long generated certificates last, and how close to their end they are made anew. */
const VALIDITY_MS = 365 * 24 * 3600_000;
const RENEW_BEFORE_MS = 24 * 3600_000;

/** `~/.kubeshim/secure-local` of the user running the shim. */
export function defaultSecureLocalDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env['HOME'] || homedir(), '.kubeshim', 'secure-local');
}

export function secureLocalFiles(dir: string): SecureLocalFiles {
  return {
    dir,
    ca: join(dir, 'ca.crt'),
    cert: join(dir, 'tls.crt'),
    key: join(dir, 'tls.key'),
    token: join(dir, 'token'),
    kubeconfig: join(dir, 'kubeconfig'),
  };
}

/**
 * The directory (0700) with a usable CA, certificate, key and token in it: the ones already there
 * when they are all usable, else new ones. `made` says which.
 */
export async function prepareSecureLocal(
  dir: string,
  now = new Date(),
): Promise<{ files: SecureLocalFiles; made: boolean }> {
  privateDirectory(dir);
  const files = secureLocalFiles(dir);
  if (reusable(files, now)) return { files, made: false };
  await generate(files, now);
  return { files, made: true };
}

/** Create the directory readable by its owner only, or make an existing one so; never another's. */
function privateDirectory(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    if (!st.isDirectory()) throw new Error(`${dir} is not a directory: move it away`);
    if (process.getuid !== undefined && st.uid !== process.getuid())
      throw new Error(`${dir} belongs to another user: remove it, or run as its owner`);
    if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw e.code ? new Error(`--secure-local: ${dir}: ${fileProblem(e)}`) : err;
  }
}

/** The file's bytes when it is a regular file of ours that no one else can read. */
function readPrivate(file: string): Buffer | undefined {
  try {
    const st = lstatSync(file);
    if (!st.isFile() || (st.mode & 0o077) !== 0) return undefined;
    if (process.getuid !== undefined && st.uid !== process.getuid()) return undefined;
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

/** True when the files there make a listener kubectl will trust for a while yet. */
function reusable(files: SecureLocalFiles, now: Date): boolean {
  const [ca, cert, key, token] = [files.ca, files.cert, files.key, files.token].map(readPrivate);
  if (!ca || !cert || !key || !token) return false;
  if (!/^[A-Za-z0-9_-]{43,}$/.test(token.toString('utf8').trim())) return false;
  try {
    const caCert = new NodeCertificate(ca);
    const serverCert = new NodeCertificate(cert);
    createSecureContext({ cert, key }); // throws when the key is not the certificate's
    const goodUntil = now.getTime() + RENEW_BEFORE_MS;
    return (
      serverCert.checkIssued(caCert) &&
      serverCert.verify(caCert.publicKey) &&
      SECURE_LOCAL_NAMES.ips.every((ip) => serverCert.checkIP(ip) !== undefined) &&
      Date.parse(serverCert.validTo) > goodUntil &&
      Date.parse(caCert.validTo) > goodUntil &&
      Date.parse(serverCert.validFrom) <= now.getTime()
    );
  } catch {
    return false;
  }
}

export interface SecureLocalKubeconfig {
  /** The shim's address as the listener reports it, e.g. `https://127.0.0.1:8001`. */
  url: string;
  /** Where to write it (`--write-kubeconfig`); default the mode's directory. */
  output?: string;
  /** The source of the injected credentials, as `serve` was given it. */
  kubeconfig?: string;
  context?: string;
  upstream?: string;
}

/**
 * Write the kubeconfig kubectl uses as it is: the shim's address, the CA, the listener's token.
 * Returns where it went, its context, and what to tell the user.
 */
export function writeSecureLocalKubeconfig(
  files: SecureLocalFiles,
  opts: SecureLocalKubeconfig,
  env: NodeJS.ProcessEnv = process.env,
): { file: string; context: string; notes: string[] } {
  const built = buildShimKubeconfig(
    {
      listen: new URL(opts.url).host,
      tlsCert: files.cert,
      ca: files.ca,
      tokenFile: files.token,
      kubeconfig: opts.kubeconfig,
      context: opts.context,
      upstream: opts.upstream,
    },
    env,
  );
  const file = opts.output ?? files.kubeconfig;
  writePrivate(file, renderKubeconfig(built, 'kubeshim serve --secure-local'), '--write-kubeconfig');
  return { file, context: built.name, notes: built.notes };
}

/** A positive serial number of 16 random bytes, as hex. */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0]! &= 0x7f;
  return bytes.toString('hex');
}

async function generate(files: SecureLocalFiles, now: Date): Promise<void> {
  // the generator (and the metadata polyfill it needs) is loaded only by this mode
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  // node's WebCrypto, handed to the generator rather than installed globally
  const crypto = webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[1];
  const { subtle } = webcrypto;
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const notBefore = new Date(now.getTime() - 5 * 60_000); // a little clock skew
  const notAfter = new Date(now.getTime() + VALIDITY_MS);
  const caKeys = await subtle.generateKey(alg, false, ['sign', 'verify']);
  const ca = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serialNumber(),
      name: 'CN=kubeshim secure-local CA',
      notBefore,
      notAfter,
      keys: caKeys,
      signingAlgorithm: alg,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  const serverKeys = await subtle.generateKey(alg, true, ['sign', 'verify']);
  const server = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: 'CN=localhost',
      issuer: ca.subject,
      notBefore,
      notAfter,
      publicKey: serverKeys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: alg,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([
          ...SECURE_LOCAL_NAMES.ips.map((value) => ({ type: 'ip' as const, value })),
          ...SECURE_LOCAL_NAMES.dns.map((value) => ({ type: 'dns' as const, value })),
        ]),
        await x509.SubjectKeyIdentifierExtension.create(serverKeys.publicKey, false, crypto),
        await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  const pkcs8 = Buffer.from(await subtle.exportKey('pkcs8', serverKeys.privateKey));
  const keyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({
    format: 'pem',
    type: 'pkcs8',
  });
  writePrivateFile(files.ca, ca.toString('pem'));
  writePrivateFile(files.cert, server.toString('pem'));
  writePrivateFile(files.key, keyPem.toString());
  writePrivateFile(files.token, `${randomBytes(32).toString('base64url')}\n`);
}

/** Replace the file at once (a crash leaves the old one), readable by its owner only. */
function writePrivateFile(file: string, text: string): void {
  try {
    replacePrivately(file, text);
  } catch (err) {
    throw new Error(`--secure-local: ${file}: ${fileProblem(err as NodeJS.ErrnoException)}`);
  }
}
