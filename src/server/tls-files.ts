/**
 * The listener's certificate and key, checked before the shim starts so that a missing file, a
 * file that is not PEM, or a key that belongs to another certificate is named by its flag instead
 * of surfacing as Node's ENOENT or OpenSSL's text.
 */
import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { readFlagFile } from './flag-file.js';

export function checkListenerTls(certFile: string, keyFile: string, clientCaFile?: string): void {
  const cert = readFlagFile('--tls-cert', certFile);
  const key = readFlagFile('--tls-key', keyFile);
  parseCertificate('--tls-cert', certFile, cert);
  if (clientCaFile !== undefined) readCertificate('--client-ca', clientCaFile);
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    const text = (err as Error).message;
    if (/key values mismatch/i.test(text))
      throw new Error(
        `--tls-key ${keyFile} is not the private key of --tls-cert ${certFile}: give the key the certificate was issued for`,
      );
    throw new Error(
      `--tls-key ${keyFile} is not a PEM private key (${text.replace(/^error:[0-9A-F]+:/, '')})`,
    );
  }
}

/** The certificate in the file a flag names, or a sentence naming the flag. */
export function readCertificate(flag: string, file: string): X509Certificate {
  return parseCertificate(flag, file, readFlagFile(flag, file));
}

function parseCertificate(flag: string, file: string, pem: Buffer): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new Error(
      `${flag} ${file} is not a PEM certificate (it should start with -----BEGIN CERTIFICATE-----)`,
    );
  }
}
