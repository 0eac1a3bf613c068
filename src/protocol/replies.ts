/**
 * Reply shapes, field for field as OpenAlgo's proxy sends them (spec §2.3–2.10). Pure builders;
 * the gateway serialises them.
 */
import type { ProtocolError } from './requests.js';
import { MODE_LABEL, type Mode } from './modes.js';

export type Reply = Record<string, unknown>;

function withRequestId(reply: Reply, requestId: unknown): Reply {
  if (requestId !== undefined && requestId !== null) reply.request_id = requestId;
  return reply;
}

/** The error envelope: no `type`, no `request_id`. */
export function errorReply(error: ProtocolError): Reply {
  return { status: 'error', code: error.code, message: error.message };
}

export function authReply(broker: string, user: string, extra?: Reply): Reply {
  return {
    type: 'auth',
    status: 'success',
    message: 'Authentication successful',
    broker,
    user_id: user,
    supported_features: { ltp: true, quote: true, depth: true },
    ...extra,
  };
}

export type SubscribeOutcome =
  | { symbol: unknown; exchange: unknown; ok: true; mode: Mode; depth: unknown }
  | { symbol: unknown; exchange: unknown; ok: false; message: string };

export function subscribeReply(outcomes: SubscribeOutcome[], broker: string, requestId: unknown): Reply {
  const subscriptions = outcomes.map((o) =>
    o.ok
      ? { symbol: o.symbol, exchange: o.exchange, status: 'success', mode: MODE_LABEL[o.mode], depth: o.depth, broker }
      : { symbol: o.symbol, exchange: o.exchange, status: 'error', message: o.message, broker },
  );
  // OpenAlgo: "partial" as soon as any symbol failed, even when all did.
  const status = outcomes.some((o) => !o.ok) ? 'partial' : 'success';
  return withRequestId(
    { type: 'subscribe', status, subscriptions, message: 'Subscription processing complete', broker },
    requestId,
  );
}

export type UnsubscribeOutcome =
  | { symbol: unknown; exchange: unknown; ok: true }
  | { symbol: unknown; exchange: unknown; ok: false; message: string };

export function unsubscribeReply(outcomes: UnsubscribeOutcome[], broker: string, requestId: unknown): Reply {
  const successful = [];
  const failed = [];
  for (const o of outcomes) {
    if (o.ok) successful.push({ symbol: o.symbol, exchange: o.exchange, status: 'success', broker });
    else failed.push({ symbol: o.symbol, exchange: o.exchange, status: 'error', message: o.message, broker });
  }
  const status = failed.length === 0 ? 'success' : successful.length > 0 ? 'partial' : 'error';
  return withRequestId(
    { type: 'unsubscribe', status, message: 'Unsubscription processing complete', successful, failed, broker },
    requestId,
  );
}

export function ordersReply(subscribe: boolean, requestId: unknown): Reply {
  return withRequestId(
    subscribe
      ? { type: 'subscribe_orders', status: 'success', message: 'Subscribed to order updates' }
      : { type: 'unsubscribe_orders', status: 'success', message: 'Unsubscribed from order updates' },
    requestId,
  );
}

export function brokerInfoReply(broker: string, adapterStatus: string, user: string): Reply {
  return { type: 'broker_info', status: 'success', broker, adapter_status: adapterStatus, user_id: user };
}

export function supportedBrokersReply(brokers: string[]): Reply {
  return { type: 'supported_brokers', status: 'success', brokers, count: brokers.length };
}

export function pongReply(serverTimestamp: number, clientTimestamp: unknown, pingId: unknown): Reply {
  const reply: Reply = { type: 'pong', status: 'success', server_timestamp: serverTimestamp };
  if (clientTimestamp !== undefined && clientTimestamp !== null) reply.client_timestamp = clientTimestamp;
  if (pingId !== undefined && pingId !== null) reply._pingId = pingId;
  return reply;
}

/**
 * tickcast extension: a feed's status changed (`live`, `reconnecting`, `stale`, `down`), sent to
 * the clients on that feed so they never wait in silence. OpenAlgo clients ignore unknown types.
 */
export function feedStatusEvent(feed: string, broker: string, status: string, message: string | undefined, timestamp: number): Reply {
  const event: Reply = { type: 'feed_status', feed, broker, status, timestamp };
  if (message) event.message = message;
  return event;
}

/**
 * tickcast extension (recovery after reconnect): every message of a stream's `mode` from `from`
 * to `to` was resent (`count` of them, each `"recovered": true`); live messages follow.
 */
export function recoveredEvent(symbol: string, exchange: string, mode: Mode, from: number, to: number, count: number): Reply {
  return { type: 'recovered', symbol, exchange, mode, from, to, count };
}

export type GapReason = 'epoch' | 'history' | 'ahead';

/**
 * tickcast extension (recovery after reconnect): what the client missed after `since` cannot be
 * resent; live messages follow, and the client should resync. `next` is the `seq` of the next
 * message of the mode the client will get (this gateway process's numbering), `oldest` (reason
 * `history`) the oldest the gateway still held.
 */
export function gapEvent(symbol: string, exchange: string, mode: Mode, since: number, reason: GapReason, message: string, next: number, oldest?: number): Reply {
  const event: Reply = { type: 'gap', symbol, exchange, mode, since, reason, message, next };
  if (oldest !== undefined) event.oldest = oldest;
  return event;
}
