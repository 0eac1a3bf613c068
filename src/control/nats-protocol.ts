/**
 * The control plane over NATS, for instances with several gateway nodes. Roles are the other way
 * round from the ZeroMQ channel (protocol.ts): each adapter serves requests on its feed's subject
 * (`tickcast.<instance>.ctl.feed.<feed>`) and many nodes talk to it. Pure: types and the codec.
 *
 * Node → adapter, NATS request/reply with a timeout each:
 *   hello      registers the node (again): "count what I held as pending; I replay my whole set"
 *   heartbeat  every heartbeatMs; with a digest of the node's set when no command is in flight.
 *              The answer says whether the adapter knows this node's registration, whether the
 *              digests differ (the node then registers anew and replays), and the adapter's
 *              epoch (a new epoch: the adapter restarted and holds nothing).
 *   subscribe / unsubscribe   one stream, answered once the adapter's upstream has it
 *   bye        the node is stopping: its interest is released at once
 *   ping       is anyone serving this feed? (a second adapter with the same feed id refuses to start)
 * Adapter → every node (publish on `tickcast.<instance>.ctl.announce`): `announce` every
 * heartbeatMs and on each status change (nodes discover feeds this way; `ctl.discover` asks for
 * one at once), and `bye` when it stops.
 *
 * A node that stops heartbeating for missedHeartbeats periods has its interest released; an
 * adapter that stops answering is reported down to the node's clients.
 */
import type { FeedStatus } from '../feed.js';
import type { Mode } from '../protocol/modes.js';
import { type Decoded, type Fields, MAX_SYMBOL_LENGTH, boolean, brokers, decodeWith, fail, integer, mode, name, optionalText, status, text } from './fields.js';
import type { Digest } from './node-interest.js';

/** Bumped on any incompatible change; an adapter refuses a hello with another version. */
export const NATS_CONTROL_PROTOCOL = 1;

/** Who an adapter is: in every announce, welcome and pong. */
export interface AdapterInfo {
  protocol: number;
  feed: string;
  broker: string;
  brokers: string[] | '*';
  pid: number;
  host: string;
  /** Random per adapter process: a different epoch means the adapter restarted. */
  epoch: number;
  heartbeatMs: number;
  status: FeedStatus;
  message?: string;
}

interface NodeRef {
  /** Unique per node process. */
  node: string;
  /** The node's registration round with this adapter; bumped on every hello. */
  session: number;
}

export type NodeRequest =
  | ({ type: 'hello'; protocol: number; heartbeatMs: number; host: string; pid: number } & NodeRef)
  | ({ type: 'heartbeat'; digest?: Digest } & NodeRef)
  | ({ type: 'subscribe'; exchange: string; symbol: string; mode: Mode; depth: number } & NodeRef)
  | ({ type: 'unsubscribe'; exchange: string; symbol: string } & NodeRef)
  | ({ type: 'bye' } & NodeRef)
  | { type: 'ping' };

export type AdapterReply =
  | ({ type: 'welcome' } & AdapterInfo)
  | { type: 'refused'; message: string }
  | { type: 'heartbeat'; epoch: number; known: boolean; resync: boolean; status: FeedStatus; message?: string }
  | { type: 'reply'; ok: true; depth?: number }
  | { type: 'reply'; ok: false; message: string }
  /** The adapter does not know this node's registration: hello again, then replay. */
  | { type: 'reset'; message: string }
  | ({ type: 'pong' } & AdapterInfo)
  /** The request was not understood. */
  | { type: 'error'; message: string };

export type Announcement = ({ type: 'announce' } & AdapterInfo) | { type: 'bye'; feed: string; epoch: number };

export const encode = (message: NodeRequest | AdapterReply | Announcement): string => JSON.stringify(message);

// ——— validation (fields.ts; never throws out of the decoders) ———

function nodeRef(f: Fields): NodeRef {
  return { node: name(f, 'node'), session: integer(f, 'session') };
}

function digest(f: Fields): Digest | undefined {
  const value = f.digest;
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null) fail('heartbeat.digest must be an object');
  const d = value as Fields;
  const count = d.count;
  const sum = d.sum;
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) fail('heartbeat.digest.count must be an integer ≥ 0');
  if (typeof sum !== 'number' || !Number.isInteger(sum) || sum < 0 || sum > 0xffffffff) fail('heartbeat.digest.sum must be a 32-bit unsigned integer');
  return { count, sum };
}

function info(f: Fields): AdapterInfo {
  const result: AdapterInfo = {
    protocol: integer(f, 'protocol', 1),
    feed: name(f, 'feed'),
    broker: name(f, 'broker'),
    brokers: brokers(f),
    pid: integer(f, 'pid', 1),
    host: name(f, 'host', 255),
    epoch: integer(f, 'epoch'),
    heartbeatMs: integer(f, 'heartbeatMs', 1),
    status: status(f),
  };
  const message = optionalText(f, 'message');
  if (message !== undefined) result.message = message;
  return result;
}

function nodeRequest(f: Fields): NodeRequest {
  switch (f.type) {
    case 'hello':
      return { type: 'hello', ...nodeRef(f), protocol: integer(f, 'protocol', 1), heartbeatMs: integer(f, 'heartbeatMs', 1), host: name(f, 'host', 255), pid: integer(f, 'pid', 1) };
    case 'heartbeat': {
      const d = digest(f);
      return d === undefined ? { type: 'heartbeat', ...nodeRef(f) } : { type: 'heartbeat', ...nodeRef(f), digest: d };
    }
    case 'subscribe':
      return {
        type: 'subscribe',
        ...nodeRef(f),
        exchange: name(f, 'exchange', MAX_SYMBOL_LENGTH),
        symbol: name(f, 'symbol', MAX_SYMBOL_LENGTH),
        mode: mode(f),
        depth: integer(f, 'depth'),
      };
    case 'unsubscribe':
      return { type: 'unsubscribe', ...nodeRef(f), exchange: name(f, 'exchange', MAX_SYMBOL_LENGTH), symbol: name(f, 'symbol', MAX_SYMBOL_LENGTH) };
    case 'bye':
      return { type: 'bye', ...nodeRef(f) };
    case 'ping':
      return { type: 'ping' };
    default:
      return fail(`unknown request type ${JSON.stringify(f.type).slice(0, 64)}`);
  }
}

function adapterReply(f: Fields): AdapterReply {
  switch (f.type) {
    case 'welcome':
      return { type: 'welcome', ...info(f) };
    case 'pong':
      return { type: 'pong', ...info(f) };
    case 'refused':
      return { type: 'refused', message: text(f, 'message') };
    case 'heartbeat': {
      const reply: AdapterReply = { type: 'heartbeat', epoch: integer(f, 'epoch'), known: boolean(f, 'known'), resync: boolean(f, 'resync'), status: status(f) };
      const message = optionalText(f, 'message');
      return message === undefined ? reply : { ...reply, message };
    }
    case 'reply':
      if (!boolean(f, 'ok')) return { type: 'reply', ok: false, message: text(f, 'message') };
      return f.depth === undefined ? { type: 'reply', ok: true } : { type: 'reply', ok: true, depth: integer(f, 'depth') };
    case 'reset':
      return { type: 'reset', message: text(f, 'message') };
    case 'error':
      return { type: 'error', message: text(f, 'message') };
    default:
      return fail(`unknown reply type ${JSON.stringify(f.type).slice(0, 64)}`);
  }
}

function announcement(f: Fields): Announcement {
  if (f.type === 'announce') return { type: 'announce', ...info(f) };
  if (f.type === 'bye') return { type: 'bye', feed: name(f, 'feed'), epoch: integer(f, 'epoch') };
  return fail(`unknown announcement type ${JSON.stringify(f.type).slice(0, 64)}`);
}

/** What an adapter receives on its feed subject. */
export const decodeNodeRequest = (data: Uint8Array | string): Decoded<NodeRequest> => decodeWith(data, nodeRequest);
/** What a node receives as the answer to a request. */
export const decodeAdapterReply = (data: Uint8Array | string): Decoded<AdapterReply> => decodeWith(data, adapterReply);
/** What a node receives on the announce subject. */
export const decodeAnnouncement = (data: Uint8Array | string): Decoded<Announcement> => decodeWith(data, announcement);
