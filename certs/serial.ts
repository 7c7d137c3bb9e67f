import { randomBytes } from 'node:crypto';

/**
 * A random positive 128-bit serial number as hex: 16 random bytes whose first byte is not zero (so the
 * magnitude is always 16 bytes); DER adds a leading 0x00 when the top bit is set, keeping it positive.
 */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  if (bytes[0] === 0) bytes[0] = 1;
  return bytes.toString('hex');
}
