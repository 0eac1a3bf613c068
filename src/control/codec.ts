/**
 * Encoding and validation of control-channel messages. Decoding never throws: anything a peer
 * sends either becomes a well-typed message (rebuilt from its known fields only) or an error
 * saying what is wrong with it, so one bad peer cannot break the channel.
 */
import {
  type Decoded,
  type Fields,
  MAX_SYMBOL_LENGTH,
  MAX_TEXT_LENGTH,
  boolean,
  brokers,
  decodeWith,
  fail,
  integer,
  mode,
  name,
  optionalName,
  optionalText,
  status,
  text,
} from './fields.js';
import type { AdapterMessage, ControlMessage, GatewayMessage, Hello } from './protocol.js';

export { type Decoded, MAX_BROKERS, MAX_MESSAGE_BYTES, MAX_NAME_LENGTH, MAX_SYMBOL_LENGTH, MAX_TEXT_LENGTH } from './fields.js';

export function encodeMessage(message: ControlMessage): string {
  return JSON.stringify(message);
}

/** Cuts free text to what the receiving side accepts. */
export function clipText(text: string): string {
  return text.length <= MAX_TEXT_LENGTH ? text : `${text.slice(0, MAX_TEXT_LENGTH - 1)}…`;
}

function hello(fields: Fields): Hello {
  const message: Hello = {
    type: 'hello',
    protocol: integer(fields, 'protocol', 1),
    feed: name(fields, 'feed'),
    broker: name(fields, 'broker'),
    brokers: brokers(fields),
    pid: integer(fields, 'pid', 1),
    session: integer(fields, 'session'),
    heartbeatMs: integer(fields, 'heartbeatMs', 1),
    status: status(fields),
  };
  const instance = optionalName(fields, 'instance');
  const entryId = optionalName(fields, 'entryId');
  if (instance !== undefined) message.instance = instance;
  if (entryId !== undefined) message.entryId = entryId;
  return message;
}

function adapterMessage(fields: Fields): AdapterMessage {
  switch (fields.type) {
    case 'hello':
      return hello(fields);
    case 'heartbeat':
      return { type: 'heartbeat' };
    case 'bye':
      return { type: 'bye' };
    case 'reply': {
      const id = integer(fields, 'id');
      if (!boolean(fields, 'ok')) return { type: 'reply', id, ok: false, message: text(fields, 'message') };
      if (fields.depth === undefined) return { type: 'reply', id, ok: true };
      return { type: 'reply', id, ok: true, depth: integer(fields, 'depth') };
    }
    case 'status': {
      const message = optionalText(fields, 'message');
      return message === undefined
        ? { type: 'status', status: status(fields) }
        : { type: 'status', status: status(fields), message };
    }
    default:
      return fail(`unknown adapter message type ${JSON.stringify(fields.type).slice(0, 64)}`);
  }
}

function gatewayMessage(fields: Fields): GatewayMessage {
  switch (fields.type) {
    case 'welcome':
      return { type: 'welcome', session: integer(fields, 'session'), heartbeatMs: integer(fields, 'heartbeatMs', 1) };
    case 'refused':
      return { type: 'refused', session: integer(fields, 'session'), message: text(fields, 'message') };
    case 'heartbeat':
      return { type: 'heartbeat' };
    case 'bye':
      return { type: 'bye' };
    case 'reset':
      return { type: 'reset', message: text(fields, 'message') };
    case 'subscribe':
      return {
        type: 'subscribe',
        id: integer(fields, 'id'),
        exchange: name(fields, 'exchange', MAX_SYMBOL_LENGTH),
        symbol: name(fields, 'symbol', MAX_SYMBOL_LENGTH),
        mode: mode(fields),
        depth: integer(fields, 'depth'),
      };
    case 'unsubscribe':
      return {
        type: 'unsubscribe',
        id: integer(fields, 'id'),
        exchange: name(fields, 'exchange', MAX_SYMBOL_LENGTH),
        symbol: name(fields, 'symbol', MAX_SYMBOL_LENGTH),
      };
    default:
      return fail(`unknown gateway message type ${JSON.stringify(fields.type).slice(0, 64)}`);
  }
}

/** What the gateway receives. */
export function decodeAdapterMessage(data: Buffer | string): Decoded<AdapterMessage> {
  return decodeWith(data, adapterMessage);
}

/** What an adapter receives. */
export function decodeGatewayMessage(data: Buffer | string): Decoded<GatewayMessage> {
  return decodeWith(data, gatewayMessage);
}
