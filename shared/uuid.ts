import { createHash } from 'node:crypto';

/** Warden's namespace for deterministic names (a fixed random UUID). */
export const WARDEN_NAMESPACE = '5f0b7c1e-3a8d-4d3f-9a52-1c7e2b6d8f40';

function parse(uuid: string): Buffer {
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`Not a UUID: ${uuid}`);
  return Buffer.from(hex, 'hex');
}

/**
 * RFC 9562 UUID version 5 (SHA-1, name-based). Role assignments are named with it from scope, role
 * definition and principal, so creating one twice hits the same name and is harmless.
 */
export function uuidV5(name: string, namespace: string = WARDEN_NAMESPACE): string {
  const hash = createHash('sha1').update(parse(namespace)).update(Buffer.from(name, 'utf8')).digest();
  const b = Buffer.from(hash.subarray(0, 16));
  b[6] = ((b[6] as number) & 0x0f) | 0x50;
  b[8] = ((b[8] as number) & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
