/**
 * Fernet tokens (https://github.com/fernet/spec), keyed exactly as OpenAlgo keys them, so
 * `api_keys.api_key_encrypted` (and `auth.auth` / `auth.feed_token`) written by either program
 * decrypt in the other.
 *
 * Token: 0x80 | timestamp (u64 BE seconds) | IV (16) | AES-128-CBC/PKCS7 ciphertext | HMAC-SHA256
 * of everything before it; urlsafe base64 with padding.
 */
import crypto from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2 = promisify(crypto.pbkdf2);

const VERSION = 0x80;
const HEADER = 1 + 8 + 16;
const MAC = 32;
const BLOCK = 16;
/** OpenAlgo's fallback KDF salt when FERNET_SALT is unset or not usable hex. */
const LEGACY_SALT = Buffer.from('openalgo_static_salt', 'ascii');
const PBKDF2_ITERATIONS = 100_000;
const BASE64URL_PADDED = /^[A-Za-z0-9_-]*={0,2}$/;

/**
 * The 32-byte Fernet key: PBKDF2-HMAC-SHA256(pepper, salt, 100000). The salt is FERNET_SALT
 * decoded from hex when it is ≥ 32 characters of valid hex, else OpenAlgo's legacy static salt.
 * Async: 100k iterations take tens of milliseconds.
 */
export async function deriveFernetKey(pepper: string, fernetSalt?: string): Promise<Buffer> {
  return pbkdf2(Buffer.from(pepper, 'utf8'), fernetSaltBytes(fernetSalt), PBKDF2_ITERATIONS, 32, 'sha256');
}

/** OpenAlgo's `_resolve_fernet_salt()`: strip, ≥ 32 chars, then Python's `bytes.fromhex`. */
export function fernetSaltBytes(fernetSalt: string | undefined): Buffer {
  const raw = (fernetSalt ?? '').trim();
  if (raw.length >= 32) {
    const bytes = pythonFromHex(raw);
    if (bytes !== null) return bytes;
  }
  return LEGACY_SALT;
}

/** Python's `bytes.fromhex`: hex pairs, ASCII whitespace allowed between (not inside) pairs. */
function pythonFromHex(text: string): Buffer | null {
  const out: number[] = [];
  let i = 0;
  while (i < text.length) {
    if (/[ \t\n\r\v\f]/.test(text[i]!)) {
      i++;
      continue;
    }
    const pair = text.slice(i, i + 2);
    if (!/^[0-9a-fA-F]{2}$/.test(pair)) return null;
    out.push(parseInt(pair, 16));
    i += 2;
  }
  return Buffer.from(out);
}

function splitKey(key: Buffer): { signing: Buffer; encryption: Buffer } {
  if (key.length !== 32) throw new RangeError(`a Fernet key is 32 bytes (got ${key.length})`);
  return { signing: key.subarray(0, 16), encryption: key.subarray(16, 32) };
}

/** Encrypts UTF-8 text. `nowSeconds` and `iv` exist for test vectors; leave them out otherwise. */
export function fernetEncrypt(
  key: Buffer,
  plaintext: string,
  nowSeconds: number = Math.floor(Date.now() / 1000),
  iv: Buffer = crypto.randomBytes(16),
): string {
  const { signing, encryption } = splitKey(key);
  if (iv.length !== 16) throw new RangeError(`a Fernet IV is 16 bytes (got ${iv.length})`);
  const header = Buffer.alloc(HEADER);
  header[0] = VERSION;
  header.writeBigUInt64BE(BigInt(Math.floor(nowSeconds)), 1);
  iv.copy(header, 9);
  const cipher = crypto.createCipheriv('aes-128-cbc', encryption, iv);
  const body = Buffer.concat([header, cipher.update(plaintext, 'utf8'), cipher.final()]);
  const mac = crypto.createHmac('sha256', signing).update(body).digest();
  return Buffer.concat([body, mac]).toString('base64url').padEnd(4 * Math.ceil((body.length + MAC) / 3), '=');
}

/**
 * Decrypts a token to UTF-8 text, or null when it is not a valid token for this key (bad
 * encoding, version, length, MAC, padding or UTF-8). No TTL check: OpenAlgo uses none.
 */
export function fernetDecrypt(key: Buffer, token: string): string | null {
  if (typeof token !== 'string' || token.length % 4 !== 0 || !BASE64URL_PADDED.test(token)) return null;
  const { signing, encryption } = splitKey(key);
  const data = Buffer.from(token, 'base64url');
  const cipherLength = data.length - HEADER - MAC;
  if (data[0] !== VERSION || cipherLength < BLOCK || cipherLength % BLOCK !== 0) return null;

  const body = data.subarray(0, data.length - MAC);
  const expected = crypto.createHmac('sha256', signing).update(body).digest();
  // Authenticate before touching the ciphertext, in constant time.
  if (!crypto.timingSafeEqual(expected, data.subarray(data.length - MAC))) return null;

  try {
    const decipher = crypto.createDecipheriv('aes-128-cbc', encryption, data.subarray(9, HEADER));
    const plain = Buffer.concat([decipher.update(data.subarray(HEADER, data.length - MAC)), decipher.final()]);
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(plain);
  } catch {
    return null;
  }
}
