/**
 * The control protocol's keys. The instance key (32 random bytes, 64 hex digits in a file only
 * its user can read) is what makes a process one of the instance's adapters or gateways: it
 * keys the frames that open registrations, and each registration derives its own pair of keys
 * from it and both ends' fresh nonces, so a frame seen once cannot be replayed in another
 * registration nor in the other direction.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, TickcastError } from '../errors.js';
import { diskFullAdvice, storageProblem } from '../store/storage-advice.js';

const KEY_TEXT = /^[0-9a-f]{64}$/;

/** HMAC-SHA256 of `text` under `key`, as 64 lower-case hex digits. */
export function mac(key: Buffer, text: string): string {
  return createHmac('sha256', key).update(text).digest('hex');
}

/** Whether `macText` is the MAC of `text` under `key` (constant time). */
export function authentic(key: Buffer, text: string, macText: string): boolean {
  // Buffer.from(…, 'hex') would stop at the first non-hex digit and ignore an odd last one.
  if (!KEY_TEXT.test(macText)) return false;
  const expected = Buffer.from(mac(key, text), 'hex');
  const given = Buffer.from(macText, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** 32 fresh random bytes as hex: a registration nonce. */
export function newNonce(): string {
  return randomBytes(32).toString('hex');
}

/** The keys of one registration: gateway → adapter and adapter → gateway. */
export interface SessionKeys {
  toAdapter: Buffer;
  toGateway: Buffer;
}

export function sessionKeys(instanceKey: Buffer, gatewayNonce: string, adapterNonce: string): SessionKeys {
  const derive = (direction: string): Buffer => createHmac('sha256', instanceKey).update(`tickcast control ${direction} ${gatewayNonce} ${adapterNonce}`).digest();
  return { toAdapter: derive('to-adapter'), toGateway: derive('to-gateway') };
}

/**
 * Reads the instance key from `file`, creating it (mode 0600, in a 0700 directory) when `create`
 * and it does not exist yet. Throws CONFIG_INVALID naming the file when it cannot.
 */
export function loadInstanceKey(file: string, { create }: { create: boolean }): Buffer {
  const existing = readKeyFile(file);
  if (existing) return existing;
  if (!create) {
    throw new TickcastError(
      ErrorCode.CONFIG_INVALID,
      `control key file ${file} does not exist: copy the instance's control key here (control.key in the instance's data directory on the host of its first process)`,
    );
  }
  createKeyFile(file);
  // Read back: when another process created it first, its key is the one to use.
  const key = readKeyFile(file);
  if (!key) throw new TickcastError(ErrorCode.CONFIG_INVALID, `control key file ${file} disappeared while starting`);
  return key;
}

function readKeyFile(file: string): Buffer | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TickcastError(ErrorCode.CONFIG_INVALID, `cannot read control key file ${file}: ${(err as Error).message}`);
  }
  if (!KEY_TEXT.test(text)) throw new TickcastError(ErrorCode.CONFIG_INVALID, `control key file ${file} must hold 64 lower-case hex digits`);
  return Buffer.from(text, 'hex');
}

/** Writes a fresh key to a private temp file and links it into place (never half-written, one winner). */
function createKeyFile(file: string): void {
  const dir = path.dirname(file);
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(tmp, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    try {
      fs.linkSync(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  } catch (err) {
    // A full disk is not a configuration mistake: exit 1 saying where to free space, not exit 2.
    if (storageProblem(err) === 'full') throw new TickcastError(ErrorCode.DISK_FULL, `cannot create control key file ${file}: ${(err as Error).message}; ${diskFullAdvice(file)}`);
    throw new TickcastError(ErrorCode.CONFIG_INVALID, `cannot create control key file ${file}: ${(err as Error).message}`);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}
