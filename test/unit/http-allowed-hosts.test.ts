/** Which Host headers the HTTP routes answer to: loopback and the listen host at the gateway's port, IP literals, the operator's names. */
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { AllowedHosts } from '../../src/http/allowed-hosts.js';

/** A request as far as the check reads it: its Host header and the socket it arrived on. */
function requestTo(host: string | undefined, localPort = 8765, encrypted = false): IncomingMessage {
  return { headers: host === undefined ? {} : { host }, socket: { localPort, ...(encrypted ? { encrypted } : {}) } } as unknown as IncomingMessage;
}

describe('AllowedHosts', () => {
  const hosts = new AllowedHosts({ listenHost: 'gw.internal', names: ['trade.example.com', 'metrics.example.com:9100'] });
  const allowed = (host: string | undefined, port?: number, encrypted?: boolean): boolean => hosts.refusal(requestTo(host, port, encrypted)) === undefined;

  it('answers the configured listen host at the gateway port only', () => {
    expect(allowed('gw.internal:8765')).toBe(true);
    expect(allowed('GW.INTERNAL:8765')).toBe(true);
    expect(allowed('gw.internal:8766')).toBe(false);
    expect(allowed('gw.internal')).toBe(false);
  });

  it("answers the operator's names at any port, or at the one port given", () => {
    expect(allowed('trade.example.com')).toBe(true);
    expect(allowed('trade.example.com:443')).toBe(true);
    expect(allowed('metrics.example.com:9100')).toBe(true);
    expect(allowed('metrics.example.com')).toBe(false);
    expect(allowed('sub.trade.example.com')).toBe(false);
  });

  it("takes a missing port as the scheme's default", () => {
    expect(allowed('localhost', 80)).toBe(true);
    expect(allowed('localhost', 443)).toBe(false);
    expect(allowed('localhost', 443, true)).toBe(true);
  });

  it('answers an IPv6 listen address in brackets, and any IP literal', () => {
    const v6 = new AllowedHosts({ listenHost: '::' });
    expect(v6.refusal(requestTo('[::]:8765'))).toBeUndefined();
    expect(v6.refusal(requestTo('203.0.113.5:1'))).toBeUndefined();
  });

  it('says why it refuses, naming the setting for extra names', () => {
    expect(hosts.refusal(requestTo(undefined))).toBe('The request has no Host header');
    expect(hosts.refusal(requestTo('evil.example:8765'))).toBe(
      'Host "evil.example:8765" is not a name this gateway answers to (loopback names at its port, its listen host, IP addresses, or names listed in TICKCAST_ALLOWED_HOSTS)',
    );
    expect(hosts.refusal(requestTo('a b'))).toBe('Host "a b" is not a valid host name');
    expect(hosts.refusal(requestTo('localhost:99999'))).toBe('Host "localhost:99999" is not a valid host name');
  });
});
