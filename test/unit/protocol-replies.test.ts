import { describe, expect, it } from 'vitest';
import {
  authReply,
  brokerInfoReply,
  errorReply,
  ordersReply,
  pongReply,
  subscribeReply,
  supportedBrokersReply,
  unsubscribeReply,
} from '../../src/protocol/replies.js';

describe('reply shapes (spec §2.3–2.10)', () => {
  it('error envelope has no type and no request_id', () => {
    expect(errorReply({ code: 'INVALID_JSON', message: 'Invalid JSON message' })).toStrictEqual({
      status: 'error',
      code: 'INVALID_JSON',
      message: 'Invalid JSON message',
    });
  });

  it('auth success', () => {
    expect(authReply('zerodha', 'alice')).toStrictEqual({
      type: 'auth',
      status: 'success',
      message: 'Authentication successful',
      broker: 'zerodha',
      user_id: 'alice',
      supported_features: { ltp: true, quote: true, depth: true },
    });
  });

  it('subscribe: labels, partial on any failure, request_id only when given', () => {
    const ok = { symbol: 'RELIANCE', exchange: 'NSE', ok: true as const, mode: 1 as const, depth: 5 };
    const bad = { symbol: 'FOO', exchange: 'NSE', ok: false as const, message: 'Token not found for FOO on NSE' };
    expect(subscribeReply([ok, bad], 'zerodha', 'r')).toStrictEqual({
      type: 'subscribe',
      status: 'partial',
      subscriptions: [
        { symbol: 'RELIANCE', exchange: 'NSE', status: 'success', mode: 'LTP', depth: 5, broker: 'zerodha' },
        { symbol: 'FOO', exchange: 'NSE', status: 'error', message: 'Token not found for FOO on NSE', broker: 'zerodha' },
      ],
      message: 'Subscription processing complete',
      broker: 'zerodha',
      request_id: 'r',
    });
    expect(subscribeReply([bad], 'b', undefined).status).toBe('partial');
    expect(subscribeReply([ok], 'b', null)).not.toHaveProperty('request_id');
    expect(subscribeReply([ok], 'b', 0).request_id).toBe(0);
  });

  it('unsubscribe: success, partial, error', () => {
    const ok = { symbol: 'A', exchange: 'NSE', ok: true as const };
    const bad = { symbol: 'B', exchange: 'NSE', ok: false as const, message: 'm' };
    expect(unsubscribeReply([ok], 'b', 'x')).toStrictEqual({
      type: 'unsubscribe',
      status: 'success',
      message: 'Unsubscription processing complete',
      successful: [{ symbol: 'A', exchange: 'NSE', status: 'success', broker: 'b' }],
      failed: [],
      broker: 'b',
      request_id: 'x',
    });
    expect(unsubscribeReply([ok, bad], 'b', undefined).status).toBe('partial');
    expect(unsubscribeReply([bad], 'b', undefined).status).toBe('error');
    expect(unsubscribeReply([], 'b', undefined).status).toBe('success');
  });

  it('orders, broker info, supported brokers, pong', () => {
    expect(ordersReply(true, 'q')).toStrictEqual({ type: 'subscribe_orders', status: 'success', message: 'Subscribed to order updates', request_id: 'q' });
    expect(ordersReply(false, undefined)).toStrictEqual({ type: 'unsubscribe_orders', status: 'success', message: 'Unsubscribed from order updates' });
    expect(brokerInfoReply('zerodha', 'connected', 'alice')).toStrictEqual({ type: 'broker_info', status: 'success', broker: 'zerodha', adapter_status: 'connected', user_id: 'alice' });
    expect(supportedBrokersReply(['a', 'b'])).toStrictEqual({ type: 'supported_brokers', status: 'success', brokers: ['a', 'b'], count: 2 });
    expect(pongReply(5, undefined, undefined)).toStrictEqual({ type: 'pong', status: 'success', server_timestamp: 5 });
    expect(pongReply(5, 4, 'p1')).toStrictEqual({ type: 'pong', status: 'success', server_timestamp: 5, client_timestamp: 4, _pingId: 'p1' });
  });
});
