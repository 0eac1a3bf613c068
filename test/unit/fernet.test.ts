import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deriveFernetKey, fernetDecrypt, fernetEncrypt, fernetSaltBytes } from '../../src/auth/fernet.js';

// Vectors computed independently with Python's `cryptography` (38.0.4):
//   Fernet(key)._encrypt_from_parts(data, time, iv)
//   PBKDF2HMAC(SHA256(), 32, salt, 100000).derive(pepper.encode())
const SPEC_KEY = Buffer.from('cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=', 'base64url');
const SPEC_TOKEN = 'gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==';
const PEPPER = 'tickcast-test-pepper-0123456789abcdef';
const KEY_TEXT = '0123456789abcdef'.repeat(4);
const IV = Buffer.from(Array.from({ length: 16 }, (_, i) => 16 + i));
const STATIC_SALT_KEY = 'aa73e5fbd46664e1ad46d2b095129233292f2d11980fc97db71d56bc245ff885';
const STATIC_SALT_TOKEN =
  'gAAAAABlU_EAEBESExQVFhcYGRobHB0eH5t3Rb0XZy5_PjOd7vSiRVuvhnsmj6oPggCTLOL-UK6HQjqzGQdRNKhsGZTEwCnPUEXahT1gQB2fcx82FzoRL6mqjWZzq66BXpN6xfdq91qJN_2M0CvkCKRH0K-vLIcEcHd4Re7rdCNXHhmv6mZNkrI=';
const HEX_SALT = '00112233445566778899aabbccddeeff';
const HEX_SALT_KEY = '0abad9542dc923af3534ee326d7fd7bb7fda42041f5ec961375f5817bde5d079';
const HEX_SALT_TOKEN =
  'gAAAAABlU_EAEBESExQVFhcYGRobHB0eH_Nob-Cc2eIfX08pa62F7sE3vygBGZV-Z9guIqu78FyhYcXU4fq2hnMVgxHyUrfgp6_JrFRFGaam5q0K0X0k1L2i2e_M099vuyjeakj_yqo-2LX6Nn5jxQy96fTbzxL-pL_Bp2ieN2woGVRG6uq0UaI=';

describe('fernet', () => {
  it('matches the Fernet spec vector', () => {
    expect(fernetEncrypt(SPEC_KEY, 'hello', 499162800, Buffer.from([...Array(16).keys()]))).toBe(SPEC_TOKEN);
    expect(fernetDecrypt(SPEC_KEY, SPEC_TOKEN)).toBe('hello');
  });

  it('derives keys exactly as OpenAlgo (legacy static salt and hex FERNET_SALT)', async () => {
    const staticKey = await deriveFernetKey(PEPPER);
    expect(staticKey.toString('hex')).toBe(STATIC_SALT_KEY);
    expect(fernetEncrypt(staticKey, KEY_TEXT, 1700000000, IV)).toBe(STATIC_SALT_TOKEN);

    const hexKey = await deriveFernetKey(PEPPER, HEX_SALT);
    expect(hexKey.toString('hex')).toBe(HEX_SALT_KEY);
    expect(fernetEncrypt(hexKey, KEY_TEXT, 1700000000, IV)).toBe(HEX_SALT_TOKEN);
    expect(fernetDecrypt(hexKey, HEX_SALT_TOKEN)).toBe(KEY_TEXT);
    expect(fernetDecrypt(staticKey, HEX_SALT_TOKEN)).toBeNull();
  });

  it('picks the salt as OpenAlgo does', () => {
    const legacy = Buffer.from('openalgo_static_salt');
    expect(fernetSaltBytes(undefined)).toEqual(legacy);
    expect(fernetSaltBytes('')).toEqual(legacy);
    expect(fernetSaltBytes('00112233445566778899aabbccddee')).toEqual(legacy); // < 32 chars
    expect(fernetSaltBytes('zz112233445566778899aabbccddeeff')).toEqual(legacy); // not hex
    expect(fernetSaltBytes('00112233445566778899aabbccddeeff0')).toEqual(legacy); // odd length
    expect(fernetSaltBytes(`  ${HEX_SALT}\n`)).toEqual(Buffer.from(HEX_SALT, 'hex'));
    expect(fernetSaltBytes('0011 2233\t4455\n66778899aabbccddeeff')).toEqual(Buffer.from(HEX_SALT, 'hex'));
    expect(fernetSaltBytes('0 0112233445566778899aabbccddeeff')).toEqual(legacy); // space inside a pair
  });

  it('round-trips text, including non-ASCII and empty', () => {
    const key = crypto.randomBytes(32);
    for (const text of ['', 'a', KEY_TEXT, 'ünïcødé ✓ 🚀', 'x'.repeat(1000)]) {
      const token = fernetEncrypt(key, text);
      expect(token).toMatch(/^[A-Za-z0-9_-]+={0,2}$/);
      expect(token.length % 4).toBe(0);
      expect(fernetDecrypt(key, token)).toBe(text);
    }
  });

  it('rejects tampered, truncated, re-encoded and foreign tokens', () => {
    const key = crypto.randomBytes(32);
    const token = fernetEncrypt(key, KEY_TEXT);
    const raw = Buffer.from(token, 'base64url');
    const encode = (b: Buffer) => b.toString('base64url').padEnd(4 * Math.ceil(b.length / 3), '=');

    // Flip one bit in every byte position: version, timestamp, IV, ciphertext, MAC.
    for (let i = 0; i < raw.length; i++) {
      const bad = Buffer.from(raw);
      bad[i] = bad[i]! ^ 0x01;
      expect(fernetDecrypt(key, encode(bad)), `byte ${i}`).toBeNull();
    }
    expect(fernetDecrypt(key, encode(raw.subarray(0, raw.length - 1)))).toBeNull();
    expect(fernetDecrypt(key, encode(raw.subarray(0, 57)))).toBeNull();
    expect(fernetDecrypt(key, '')).toBeNull();
    expect(fernetDecrypt(key, token.replace(/=+$/, ''))).toBeNull(); // padding is required
    expect(fernetDecrypt(key, raw.toString('base64'))).toBeNull(); // standard alphabet
    expect(fernetDecrypt(key, `${token.slice(0, 10)}!${token.slice(11)}`)).toBeNull();
    expect(fernetDecrypt(crypto.randomBytes(32), token)).toBeNull();
    expect(fernetDecrypt(key, KEY_TEXT)).toBeNull(); // plaintext left in the column
    expect(fernetDecrypt(key, 42 as unknown as string)).toBeNull();
  });

  it('rejects a validly signed token whose plaintext is not UTF-8', () => {
    const key = crypto.randomBytes(32);
    const iv = crypto.randomBytes(16);
    const header = Buffer.concat([Buffer.from([0x80]), Buffer.alloc(8), iv]);
    const cipher = crypto.createCipheriv('aes-128-cbc', key.subarray(16), iv);
    const body = Buffer.concat([header, cipher.update(Buffer.from([0xff, 0xfe])), cipher.final()]);
    const mac = crypto.createHmac('sha256', key.subarray(0, 16)).update(body).digest();
    const whole = Buffer.concat([body, mac]);
    expect(fernetDecrypt(key, whole.toString('base64url').padEnd(4 * Math.ceil(whole.length / 3), '='))).toBeNull();
  });

  it('refuses keys that are not 32 bytes', () => {
    expect(() => fernetEncrypt(Buffer.alloc(16), 'x')).toThrow(RangeError);
  });
});
