import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { authentic, loadInstanceKey, mac, newNonce, sessionKeys } from '../../src/control/keys.js';
import { ErrorCode, TickcastError } from '../../src/errors.js';

/** The example instance key of docs/control-protocol.md. */
const KEY = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
const GATEWAY_NONCE = 'f0f889f42831745f6b152ee632ff93b873427e5b42a95ce75387126b0f8e983c';
const ADAPTER_NONCE = '4edaae841918d8001ad54de5b8b84058d57d3c86d5016606604af22e2d22c183';

/** Flips one hex digit of `hex` at `at` to another hex digit. */
const flipHex = (hex: string, at: number): string => `${hex.slice(0, at)}${hex[at] === '0' ? '1' : '0'}${hex.slice(at + 1)}`;

describe('mac and authentic', () => {
  it('is HMAC-SHA256 in lower-case hex, as node:crypto computes it', () => {
    const text = '{"type":"heartbeat"}';
    expect(mac(KEY, text)).toBe('8a744ad62b9579230da325f74e1d793228ed49212dea6b72a2e8f426e1ca84b0');
    for (const [key, value] of [
      [KEY, text],
      [randomBytes(32), 'é😀\u0000 {"a":[1,2]}'],
      [Buffer.alloc(0), ''],
      [randomBytes(64), 'x'.repeat(70_000)],
    ] as Array<[Buffer, string]>) {
      const expected = createHmac('sha256', key).update(Buffer.from(value, 'utf8')).digest('hex');
      expect(mac(key, value)).toBe(expected);
      expect(mac(key, value)).toMatch(/^[0-9a-f]{64}$/);
      expect(authentic(key, value, expected)).toBe(true);
    }
  });

  it('refuses a MAC when one byte of the text, the MAC or the key changes', () => {
    const text = '{"type":"bye","gateway":"gw-1","session":1,"seq":1}';
    const good = mac(KEY, text);
    expect(authentic(KEY, text, good)).toBe(true);
    for (let at = 0; at < text.length; at++) {
      const changed = `${text.slice(0, at)}${String.fromCharCode(text.charCodeAt(at) ^ 1)}${text.slice(at + 1)}`;
      expect(authentic(KEY, changed, good), changed).toBe(false);
    }
    for (let at = 0; at < good.length; at++) expect(authentic(KEY, text, flipHex(good, at))).toBe(false);
    const otherKey = Buffer.from(KEY);
    otherKey[31] = otherKey[31]! ^ 1;
    expect(authentic(otherKey, text, good)).toBe(false);
    expect(authentic(KEY, `${text} `, good)).toBe(false);
    expect(authentic(KEY, text.slice(0, -1), good)).toBe(false);
  });

  it('refuses a MAC of the wrong length', () => {
    const text = 'hello';
    const good = mac(KEY, text);
    for (const wrong of ['', good.slice(0, 2), good.slice(0, 62), `${good}00`, `${good}${good}`, 'not hex', 'g'.repeat(64)]) {
      expect(authentic(KEY, text, wrong), wrong).toBe(false);
    }
  });

  // authentic decodes the MAC with Buffer.from(hex), which drops an odd trailing digit and stops
  // at the first non-hex character, so a 65-character MAC or one with trailing junk still passes.
  // Frames are safe (the decoders accept only 64 lower-case hex digits), but authentic alone is
  // not. `it.fails`: this passes while the fault is there; make it a plain `it` once it is fixed.
  it('refuses a valid MAC with an extra digit or trailing junk', () => {
    const good = mac(KEY, 'hello');
    expect(authentic(KEY, 'hello', `${good}0`)).toBe(false);
    expect(authentic(KEY, 'hello', `${good}zz`)).toBe(false);
  });
});

describe('session keys', () => {
  it('derives the documented keys for the worked exchange', () => {
    const keys = sessionKeys(KEY, GATEWAY_NONCE, ADAPTER_NONCE);
    expect(keys.toAdapter.toString('hex')).toBe('ed8264c98b14a5f3c816c5e49c935f9041c44d23aa9122701e23a5ba32947a76');
    expect(keys.toGateway.toString('hex')).toBe('12dc7d315a684fc1fbc4d881f7ae8ff47538ea5c492985426a6a3e17e82c48ab');
    // HMAC-SHA256 of the instance key over the direction and both nonces, computed independently.
    const derive = (direction: string) => createHmac('sha256', KEY).update(`tickcast control ${direction} ${GATEWAY_NONCE} ${ADAPTER_NONCE}`).digest('hex');
    expect(keys.toAdapter.toString('hex')).toBe(derive('to-adapter'));
    expect(keys.toGateway.toString('hex')).toBe(derive('to-gateway'));
  });

  it('gives each direction, each nonce pair and each instance key its own keys', () => {
    const a = newNonce();
    const b = newNonce();
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(a).not.toBe(b);
    const keys = sessionKeys(KEY, a, b);
    expect(keys.toAdapter).toHaveLength(32);
    expect(keys.toGateway).toHaveLength(32);
    const all = [
      keys.toAdapter,
      keys.toGateway,
      ...Object.values(sessionKeys(KEY, b, a)),
      ...Object.values(sessionKeys(KEY, a, newNonce())),
      ...Object.values(sessionKeys(KEY, newNonce(), b)),
      ...Object.values(sessionKeys(randomBytes(32), a, b)),
      KEY,
    ].map((key) => key.toString('hex'));
    expect(new Set(all).size).toBe(all.length);
    // The same inputs give the same keys (both ends derive them independently).
    expect(sessionKeys(KEY, a, b)).toEqual(keys);
    // A frame keyed for one direction does not verify in the other.
    const text = '{"type":"bye"}';
    expect(authentic(keys.toGateway, text, mac(keys.toAdapter, text))).toBe(false);
  });
});

describe('loadInstanceKey', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tickcast-control-key-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function configError(work: () => unknown): TickcastError {
    try {
      work();
    } catch (error) {
      expect(error).toBeInstanceOf(TickcastError);
      expect((error as TickcastError).code).toBe(ErrorCode.CONFIG_INVALID);
      return error as TickcastError;
    }
    throw new Error('expected a CONFIG_INVALID error');
  }

  it('creates a private key file in a new private directory, and reads the same key back', () => {
    const file = path.join(dir, 'keys', 'nested', 'control.key');
    const key = loadInstanceKey(file, { create: true });
    expect(key).toHaveLength(32);
    const text = fs.readFileSync(file, 'utf8');
    expect(text.trim()).toMatch(/^[0-9a-f]{64}$/);
    expect(Buffer.from(text.trim(), 'hex')).toEqual(key);
    if (process.platform !== 'win32') {
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    }
    // No temp file left behind.
    expect(fs.readdirSync(path.dirname(file))).toEqual(['control.key']);
    expect(loadInstanceKey(file, { create: true })).toEqual(key);
    expect(loadInstanceKey(file, { create: false })).toEqual(key);
    expect(fs.readFileSync(file, 'utf8')).toBe(text);
  });

  it('gives another file another key', () => {
    const a = loadInstanceKey(path.join(dir, 'a.key'), { create: true });
    const b = loadInstanceKey(path.join(dir, 'b.key'), { create: true });
    expect(a.equals(b)).toBe(false);
  });

  it('reads a key someone else wrote (surrounding whitespace allowed)', () => {
    const file = path.join(dir, 'control.key');
    fs.writeFileSync(file, `  ${KEY.toString('hex')}\n\n`, { mode: 0o600 });
    expect(loadInstanceKey(file, { create: false })).toEqual(KEY);
    expect(loadInstanceKey(file, { create: true })).toEqual(KEY);
  });

  it('throws CONFIG_INVALID naming the file when it is missing and may not be created', () => {
    const file = path.join(dir, 'absent', 'control.key');
    const error = configError(() => loadInstanceKey(file, { create: false }));
    expect(error.message).toContain(file);
    expect(error.message).toMatch(/does not exist/);
    expect(fs.existsSync(file)).toBe(false);
    expect(fs.existsSync(path.dirname(file))).toBe(false);
  });

  it('throws CONFIG_INVALID naming the file when it holds garbage, and leaves it alone', () => {
    const file = path.join(dir, 'control.key');
    for (const garbage of ['', 'not a key', KEY.toString('hex').toUpperCase(), KEY.toString('hex').slice(1), `${KEY.toString('hex')}00`, `${KEY.toString('hex')} extra`]) {
      fs.writeFileSync(file, garbage);
      for (const create of [false, true]) {
        const error = configError(() => loadInstanceKey(file, { create }));
        expect(error.message).toContain(file);
        expect(error.message).toMatch(/64 lower-case hex digits/);
      }
      expect(fs.readFileSync(file, 'utf8')).toBe(garbage);
    }
  });

  it('throws CONFIG_INVALID naming the file when it cannot be read or created', () => {
    // A directory where the file should be: unreadable as a key.
    const asDir = path.join(dir, 'is-a-dir');
    fs.mkdirSync(asDir);
    expect(configError(() => loadInstanceKey(asDir, { create: true })).message).toContain(asDir);
    // A file where the directory should be: cannot be created.
    const blocker = path.join(dir, 'blocker');
    fs.writeFileSync(blocker, 'x');
    const file = path.join(blocker, 'control.key');
    expect(configError(() => loadInstanceKey(file, { create: true })).message).toContain(file);
  });
});
