/**
 * The reader of OpenAlgo's .env: python-dotenv's grammar as OpenAlgo's proxy loads it
 * (`load_dotenv()`: interpolation on, the environment not overridden). Expected values are what
 * python-dotenv 1.2 gives for the same text.
 */
import { describe, expect, it } from 'vitest';
import { parseDotenv } from '../../src/config/dotenv.js';

const values = (text: string, env: Record<string, string> = {}): Record<string, string> => Object.fromEntries(parseDotenv(text, env).values);

describe('parseDotenv', () => {
  it("reads OpenAlgo's own style: spaces around =, single and double quotes, comments, export", () => {
    const text = [
      '# OpenAlgo Environment Configuration File',
      "ENV_CONFIG_VERSION = '1.0.7'",
      '',
      "REDIRECT_URL = 'http://127.0.0.1:5000/<broker>/callback'  # Change if different",
      "WEBSOCKET_HOST='127.0.0.1'",
      'LOGIN_RATE_LIMIT_MIN = "5 per minute"',
      "NGROK_ALLOW = 'FALSE' ",
      "BROKER_KEEPALIVE_INTERVAL='20'          # seconds between pings (keep below 30)",
      'export ZMQ_PORT=5556',
      '\tZMQ_HOST  =  127.0.0.1   # unquoted, trailing comment',
      "# STRATEGY_MEMORY_LIMIT_MB = '1024'",
      "CSP_SCRIPT_SRC = \"'self' 'unsafe-inline' https://cdn.socket.io\"",
    ].join('\n');
    expect(values(text)).toStrictEqual({
      ENV_CONFIG_VERSION: '1.0.7',
      REDIRECT_URL: 'http://127.0.0.1:5000/<broker>/callback',
      WEBSOCKET_HOST: '127.0.0.1',
      LOGIN_RATE_LIMIT_MIN: '5 per minute',
      NGROK_ALLOW: 'FALSE',
      BROKER_KEEPALIVE_INTERVAL: '20',
      ZMQ_PORT: '5556',
      ZMQ_HOST: '127.0.0.1',
      CSP_SCRIPT_SRC: "'self' 'unsafe-inline' https://cdn.socket.io",
    });
  });

  it('decodes escapes as python-dotenv does: all of them in double quotes, only \\\\ and \\\' in single', () => {
    expect(values(String.raw`A="q\nr\t\"s\" \\ \u00e9"` + '\n' + String.raw`B='a\'b\\c\n'`)).toStrictEqual({
      A: 'q\nr\t"s" \\ \\u00e9',
      B: "a'b\\c\\n",
    });
  });

  it('keeps # inside an unquoted value unless a space precedes it, and reads "= # x" as the value "# x"', () => {
    expect(values('I=a#b\nJ= # c\nK=x #y\nL=\nM')).toStrictEqual({ I: 'a#b', J: '# c', K: 'x', L: '' });
  });

  it('reads quoted values across lines, with CRLF line ends, and a quoted key', () => {
    expect(values('G="multi\nline" # trailing\r\nCR=1\r\n\'N\'=quoted key\r\n')).toStrictEqual({ G: 'multi\nline', CR: '1', N: 'quoted key' });
  });

  it('lets a later line win, and a key without = unset an earlier value', () => {
    expect(values('A=1\nB=2\nA=3\nB\n')).toStrictEqual({ A: '3' });
  });

  it('interpolates ${NAME} and ${NAME:-default}: the environment first, then earlier lines, in every kind of value', () => {
    const text = 'BASE=/opt/openalgo\nDB="sqlite:///${BASE}/db/openalgo.db"\nLOG=\'${LOG_ROOT:-log}/x\'\nHOME_DIR=${HOME}\nOVERRIDE=${BASE}';
    expect(values(text, { HOME: '/home/trader', BASE: '/from/env' })).toStrictEqual({
      BASE: '/opt/openalgo',
      DB: 'sqlite:////from/env/db/openalgo.db',
      LOG: 'log/x',
      HOME_DIR: '/home/trader',
      OVERRIDE: '/from/env',
    });
    expect(values('A=${UNSET}-x')).toStrictEqual({ A: '-x' });
  });

  it('reports statements it cannot read, with their line and key, and reads on', () => {
    const result = parseDotenv("OK=1\nD = 'it''s'\nE='x' y\nR = \"unterminated\nS=2\n=bad\nT='ok'   # fine\n");
    expect(Object.fromEntries(result.values)).toStrictEqual({ OK: '1', S: '2', T: 'ok' });
    expect(result.unreadable).toStrictEqual([
      { line: 2, key: 'D' },
      { line: 3, key: 'E' },
      { line: 4, key: 'R' },
      { line: 6, key: undefined },
    ]);
  });

  it('accepts an empty file and one of comments only', () => {
    expect(parseDotenv('').values.size).toBe(0);
    expect(parseDotenv('# a\n\n   # b\n').values.size).toBe(0);
    expect(parseDotenv('# a\n').unreadable).toEqual([]);
  });
});
