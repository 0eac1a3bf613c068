import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, TickcastError } from '../../src/errors.js';
import { checkNoStoreLeftBehind, defaultDataDir } from '../../src/store/data-dir.js';

const home = (): string => '/home/someone';

describe('defaultDataDir', () => {
  it('is $XDG_DATA_HOME/tickcast, else ~/.local/share/tickcast; a relative XDG_DATA_HOME is ignored', () => {
    expect(defaultDataDir({ XDG_DATA_HOME: '/xdg/data' }, home)).toBe('/xdg/data/tickcast');
    expect(defaultDataDir({}, home)).toBe('/home/someone/.local/share/tickcast');
    expect(defaultDataDir({ XDG_DATA_HOME: '' }, home)).toBe('/home/someone/.local/share/tickcast');
    expect(defaultDataDir({ XDG_DATA_HOME: 'data' }, home)).toBe('/home/someone/.local/share/tickcast');
  });
});

describe('checkNoStoreLeftBehind', () => {
  let cwd: string;
  beforeEach(() => {
    cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'tickcast-datadir-'));
  });
  afterEach(() => fs.rmSync(cwd, { recursive: true, force: true }));

  const instanceDir = (): string => path.join(cwd, 'xdg', 'tickcast', 'default');

  it('refuses a store without keys while ./data/<instance> holds one, saying how to move it', () => {
    fs.mkdirSync(path.join(cwd, 'data', 'default'), { recursive: true });
    fs.writeFileSync(path.join(cwd, 'data', 'default', 'tickcast.db'), '');
    let error: unknown;
    try {
      checkNoStoreLeftBehind(instanceDir(), 'default', false, cwd);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(TickcastError);
    expect((error as TickcastError).code).toBe(ErrorCode.CONFIG_INVALID);
    expect((error as TickcastError).message).toContain(`mv ${path.join(cwd, 'data', 'default')} ${instanceDir()}`);
    expect((error as TickcastError).message).toContain(`TICKCAST_DATA_DIR=${path.join(cwd, 'data')}`);
    // A store that holds keys is the one in use; another instance's name is another directory.
    expect(() => checkNoStoreLeftBehind(instanceDir(), 'default', true, cwd)).not.toThrow();
    expect(() => checkNoStoreLeftBehind(path.join(cwd, 'xdg', 'tickcast', 'desk'), 'desk', false, cwd)).not.toThrow();
  });

  it('has nothing to say without an old store, or when the old place is the one in use', () => {
    expect(() => checkNoStoreLeftBehind(instanceDir(), 'default', false, cwd)).not.toThrow();
    fs.mkdirSync(path.join(cwd, 'data', 'default'), { recursive: true });
    fs.writeFileSync(path.join(cwd, 'data', 'default', 'tickcast.db'), '');
    expect(() => checkNoStoreLeftBehind(path.join(cwd, 'data', 'default'), 'default', false, cwd)).not.toThrow();
  });
});
