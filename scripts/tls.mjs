// Creates (once) the self-signed certificate the loopback emulator serves. Node only trusts it when
// NODE_EXTRA_CA_CERTS names it before the process starts, so the test runner, the demo and
// `npm run emulator` all call this first and pass the path on to the processes they start.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import selfsigned from 'selfsigned';

export async function ensureCert(dir) {
  const certFile = join(dir, 'emulator.crt');
  const keyFile = join(dir, 'emulator.key');
  if (existsSync(certFile) && existsSync(keyFile)) {
    const pem = readFileSync(certFile, 'utf8');
    const { X509Certificate } = await import('node:crypto');
    const validTo = new Date(new X509Certificate(pem).validTo);
    if (validTo.getTime() - Date.now() > 24 * 3600 * 1000) return { certFile, keyFile };
  }
  mkdirSync(dir, { recursive: true });
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
    days: 30,
    keySize: 2048,
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
    ],
  });
  writeFileSync(certFile, pems.cert);
  writeFileSync(keyFile, pems.private, { mode: 0o600 });
  return { certFile, keyFile };
}
