/**
 * A full disk is told apart from a damaged store. The SQLITE_FULL here is SQLite's own: the
 * connection's `PRAGMA max_page_count` is capped at the file's current size, so the next insert
 * cannot grow it, which needs no full file system and so runs everywhere (the full disk itself is
 * in test/integration/faults-disk-full.test.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writing } from '../../src/cli/common.js';
import { ErrorCode, TickcastError } from '../../src/errors.js';
import { type Database, openDatabase } from '../../src/store/database.js';
import { asStorageError, classifyStorageProblem, storageError, storageProblem } from '../../src/store/storage-advice.js';

let dir: string;
let file: string;
let db: Database;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tickcast-full-'));
  file = path.join(dir, 'tickcast.db');
  db = openDatabase(file);
  db.prepare("INSERT INTO api_keys (user_id, api_key_hash, api_key_encrypted) VALUES ('alice', 'h', 'e')").run();
  // Only this connection is capped: the file may not grow past what it holds now.
  db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
});
afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function insertBig(): void {
  db.prepare("INSERT INTO api_keys (user_id, api_key_hash, api_key_encrypted) VALUES ('bob', ?, 'e')").run('x'.repeat(200_000));
}

function expectDiskFull(error: unknown): void {
  expect(error).toBeInstanceOf(TickcastError);
  expect((error as TickcastError).code).toBe(ErrorCode.DISK_FULL);
  const message = (error as TickcastError).message;
  expect(message).toContain(`cannot write ${file}: database or disk is full`);
  expect(message).toContain(`disk full: no space left on the disk holding ${dir}`);
  expect(message).toContain(`free space on that disk (\`df -h ${dir}\``);
  expect(message).not.toContain('restore it from a backup');
}

describe('a write SQLite refuses for want of space', () => {
  it('is SQLITE_FULL, which asStorageError makes DISK_FULL naming the directory; the rows already stored are intact', () => {
    let raw: unknown;
    try {
      insertBig();
    } catch (error) {
      raw = error;
    }
    expect((raw as { code?: string }).code).toBe('SQLITE_FULL');
    expect(storageProblem(raw, file)).toBe('full');
    expectDiskFull(asStorageError(raw, 'store', file));
    expect(db.prepare('SELECT user_id FROM api_keys').pluck().all()).toEqual(['alice']);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
  });

  it('thrown inside a CLI write (writing) is rethrown as DISK_FULL, not left raw for a stack trace', async () => {
    let error: unknown;
    await writing(file, insertBig).catch((e: unknown) => (error = e));
    expectDiskFull(error);
  });

  it('other errors pass through writing untouched', async () => {
    const usage = new TickcastError(ErrorCode.USAGE, 'bad flag');
    await expect(writing(file, () => Promise.reject(usage))).rejects.toBe(usage);
    const plain = new Error('not storage');
    await expect(writing(file, () => Promise.reject(plain))).rejects.toBe(plain);
  });
});

describe('storageProblem', () => {
  it('takes the -shm extension SQLite fails on a full disk for a full disk, never for damage', () => {
    expect(storageProblem({ code: 'SQLITE_IOERR_SHMSIZE' })).toBe('full');
    expect(storageProblem({ code: 'ENOSPC' })).toBe('full');
    expect(storageProblem({ code: 'EDQUOT' })).toBe('full');
  });

  it('keeps an I/O error on a file system with room for a damaged file', () => {
    expect(storageProblem({ code: 'SQLITE_IOERR' }, file)).toBe('corrupt');
    expect(storageProblem({ code: 'SQLITE_NOTADB' }, file)).toBe('corrupt');
  });
});

describe('classifyStorageProblem with an injected free-space reading', () => {
  const NEARLY_FULL = () => 4096;
  const ROOMY = () => 10 * 1024 ** 3;

  it('reports a damaged database as damaged even on a nearly full disk, without reading the disk', () => {
    let reads = 0;
    const counted = () => (reads++, 4096);
    for (const code of ['SQLITE_CORRUPT', 'SQLITE_CORRUPT_VTAB', 'SQLITE_NOTADB']) {
      expect(classifyStorageProblem({ code }, counted)).toBe('corrupt');
      expect(classifyStorageProblem(new Error('wrapped', { cause: { code } }), counted)).toBe('corrupt');
    }
    expect(reads).toBe(0);
  });

  it('takes an I/O error on a nearly full disk for a full disk, and on a roomy or unknown one for damage', () => {
    for (const code of ['SQLITE_IOERR', 'SQLITE_IOERR_WRITE', 'EIO']) {
      expect(classifyStorageProblem({ code }, NEARLY_FULL)).toBe('full');
      expect(classifyStorageProblem({ code }, ROOMY)).toBe('corrupt');
      expect(classifyStorageProblem({ code }, () => undefined)).toBe('corrupt');
      expect(classifyStorageProblem({ code })).toBe('corrupt');
    }
  });
});

describe('storageError', () => {
  const isDiskFullAdvice = (message: string): boolean => message.includes('disk full: no space left');
  const isDamageAdvice = (message: string): boolean => message.includes('is damaged or unreadable');

  it('gives a damaged store STORE_FAILED and the damage advice on a nearly full disk', () => {
    const error = storageError('cannot open', { code: 'SQLITE_CORRUPT' }, 'store', file, ErrorCode.STORE_FAILED, () => 0);
    expect(error.code).toBe(ErrorCode.STORE_FAILED);
    expect(isDamageAdvice(error.message)).toBe(true);
    expect(error.message).not.toContain('nothing stored was changed');
  });

  it('gives an I/O error on a nearly full disk DISK_FULL and the disk-full advice', () => {
    const error = storageError('cannot open', { code: 'SQLITE_IOERR' }, 'store', file, ErrorCode.STORE_FAILED, () => 0);
    expect(error.code).toBe(ErrorCode.DISK_FULL);
    expect(isDiskFullAdvice(error.message)).toBe(true);
    expect(isDamageAdvice(error.message)).toBe(false);
  });

  it('reads the free space once, so the code and the advice agree even when the disk fills or frees meanwhile', () => {
    for (const code of ['SQLITE_IOERR', 'EIO', 'SQLITE_CORRUPT', 'SQLITE_NOTADB', 'SQLITE_FULL']) {
      for (const first of [0, 10 * 1024 ** 3]) {
        // Each reading differs from the one before: a second read would contradict the first.
        let reading = first;
        let reads = 0;
        const flipping = () => {
          reads++;
          const now = reading;
          reading = reading === 0 ? 10 * 1024 ** 3 : 0;
          return now;
        };
        const error = storageError('cannot open', { code }, 'store', file, ErrorCode.STORE_FAILED, flipping);
        expect(reads).toBeLessThanOrEqual(1);
        const full = error.code === ErrorCode.DISK_FULL;
        expect([code, first, isDiskFullAdvice(error.message), isDamageAdvice(error.message)]).toEqual([code, first, full, !full]);
      }
    }
  });
});
