import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { natsConnectionOptions } from '../../src/bus/nats.js';
import { ErrorCode } from '../../src/errors.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tickcast-nats-opts-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  const full = path.join(dir, name);
  fs.writeFileSync(full, text);
  return full;
};

describe('NATS connection options', () => {
  it('takes user and password out of the URLs; nats.js gets bare URLs', () => {
    const options = natsConnectionOptions(['nats://node:p%40ss@a:4222', 'nats://node:p%40ss@b:4222']);
    expect(options).toMatchObject({ servers: ['nats://a:4222', 'nats://b:4222'], user: 'node', pass: 'p@ss' });
    expect(options.tls).toBeUndefined();
  });

  it('a lone user part is a token; a token file is read and trimmed', () => {
    expect(natsConnectionOptions(['nats://s3cret@a:4222'])).toMatchObject({ servers: ['nats://a:4222'], token: 's3cret' });
    expect(natsConnectionOptions(['nats://a:4222'], { tokenFile: file('token', 'tok\n') })).toMatchObject({ token: 'tok' });
  });

  it('tls:// or a CA file turns TLS on', () => {
    expect(natsConnectionOptions(['tls://a:4222']).tls).toEqual({});
    const ca = file('ca.pem', 'x');
    expect(natsConnectionOptions(['nats://a:4222'], { caFile: ca }).tls).toEqual({ caFile: ca });
  });

  it('refuses conflicting, unreadable or malformed credentials with CONFIG_INVALID and no secret', () => {
    const seed = file('seed', 'SEEDTEXT-x');
    const cases: Array<[() => unknown, RegExp]> = [
      [() => natsConnectionOptions(['nats://u:pw-one-x@a:4222', 'nats://u:pw-two-x@b:4222']), /different credentials/],
      [() => natsConnectionOptions(['nats://u:pw-one-x@a:4222'], { tokenFile: file('t2', 'x') }), /more than once/],
      [() => natsConnectionOptions(['nats://a:4222'], { nkeySeedFile: seed }), /does not hold a user seed/],
      [() => natsConnectionOptions(['nats://a:4222'], { credsFile: path.join(dir, 'missing.creds') }), /cannot read .*missing\.creds: ENOENT/],
      [() => natsConnectionOptions(['nats://a:4222'], { certFile: file('c', 'x') }), /go together/],
    ];
    for (const [run, message] of cases) {
      let error: unknown;
      try {
        run();
      } catch (e) {
        error = e;
      }
      expect(error).toMatchObject({ code: ErrorCode.CONFIG_INVALID });
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).not.toMatch(/pw-one-x|pw-two-x|SEEDTEXT/);
    }
  });
});
