/** What a port conflict's message advises, by which port is taken and how it was chosen. Pure. */
import { devNull } from 'node:os';
import { describe, expect, it } from 'vitest';
import { loadConfigOrThrow } from '../../src/config/load.js';
import { portConflictAdvice } from '../../src/wiring.js';

const config = (env: Record<string, string>) => loadConfigOrThrow({ env: { TICKCAST_ENV_FILE: devNull, ...env }, cwd: '/' });

describe('port conflict advice', () => {
  it("the default instance on OpenAlgo's default ports: another port, or another instance name", () => {
    const advice = portConflictAdvice('ws', config({}));
    expect(advice).toBe(
      'To run beside it, pick another port with --port N (or WEBSOCKET_PORT=N; 0 picks a free one), or run this one as another instance with --instance NAME, which picks free ports by itself.',
    );
    expect(portConflictAdvice('bus', config({}))).toContain('--zmq-port N (or ZMQ_PORT=N; 0 picks a free one), or run this one as another instance with --instance NAME');
  });

  it('a port set by hand: another port (a new instance name would keep the same setting)', () => {
    expect(portConflictAdvice('ws', config({ WEBSOCKET_PORT: '9000' }))).toBe('To run beside it, pick another port with --port N (or WEBSOCKET_PORT=N; 0 picks a free one).');
    expect(portConflictAdvice('bus', config({ TICKCAST_INSTANCE: 'b', ZMQ_PORT: '5556' }))).toBe('To run beside it, pick another port with --zmq-port N (or ZMQ_PORT=N; 0 picks a free one).');
    expect(portConflictAdvice('control', config({ TICKCAST_CONTROL_PORT: '7000' }))).toContain('--control-port N (or TICKCAST_CONTROL_PORT=N');
  });

  it('an ipc endpoint is named after the instance: another name, or tcp', () => {
    const ipc = config({ TICKCAST_INSTANCE: 'x', TICKCAST_BUS_TRANSPORT: 'ipc' });
    expect(portConflictAdvice('bus', ipc)).toBe('Its name comes from the instance name: run this one as another instance with --instance NAME, or use --transport tcp.');
    expect(portConflictAdvice('ws', ipc)).toContain('--port N');
  });
});
