/**
 * The control channel between a gateway and its out-of-process adapters (ZeroMQ ROUTER in the
 * gateway, DEALER in each adapter). One JSON object per message, one message per ZeroMQ frame.
 * Pure: types and constants only (codec.ts encodes and validates).
 *
 * Adapter → gateway: `hello` (to register, and again whenever it has dropped everything the
 * gateway asked for), `heartbeat`, `reply` (to a command), `status` (upstream feed status
 * changed), `bye` (adapter stopping).
 * Gateway → adapter: `welcome` or `refused` (answers to hello), `heartbeat`, `subscribe`,
 * `unsubscribe`, `reset` (the gateway does not know the sender: hello again), `bye` (gateway
 * shutting down).
 *
 * The one rule both sides rely on: a `hello` means "I hold nothing you asked for". The gateway
 * answers each accepted hello with `welcome` and then replays its whole subscription set, so an
 * adapter that lost its gateway drops every upstream subscription before it says hello again.
 */
import type { FeedStatus } from '../feed.js';
import type { Mode } from '../protocol/modes.js';

/** Bumped on any incompatible change; a gateway refuses a hello with another version. */
export const PROTOCOL_VERSION = 1;

export interface Hello {
  type: 'hello';
  /** PROTOCOL_VERSION of the sender. */
  protocol: number;
  /** Feed id the adapter tags its ticks with; unique per instance. */
  feed: string;
  broker: string;
  /** Brokers whose users it serves, or '*' (any broker without another adapter). */
  brokers: string[] | '*';
  pid: number;
  /** Instance the adapter belongs to; a gateway of another instance refuses it. */
  instance?: string;
  /** Its registry entry id, if registered. */
  entryId?: string;
  /**
   * Registration round, chosen by the adapter: it changes every time the adapter drops its
   * subscriptions and registers again, and stays the same while it repeats an unanswered hello.
   * A repeated hello of the round already welcomed is answered again but replays nothing.
   */
  session: number;
  /** How often the adapter sends heartbeats (ms); the gateway allows for the slower of the two. */
  heartbeatMs: number;
  /** Its upstream feed status at the time of the hello. */
  status: FeedStatus;
}

export type AdapterMessage =
  | Hello
  | { type: 'heartbeat' }
  | { type: 'reply'; id: number; ok: true; depth?: number }
  | { type: 'reply'; id: number; ok: false; message: string }
  | { type: 'status'; status: FeedStatus; message?: string }
  /** The adapter is stopping: the gateway marks its feed down at once. */
  | { type: 'bye' };

export type GatewayMessage =
  /** Answer to the hello of `session`; the gateway heartbeats every `heartbeatMs`. */
  | { type: 'welcome'; session: number; heartbeatMs: number }
  /** Refusal of the hello of `session` (e.g. the feed id is taken); the adapter should exit with this message. */
  | { type: 'refused'; session: number; message: string }
  | { type: 'heartbeat' }
  | { type: 'subscribe'; id: number; exchange: string; symbol: string; mode: Mode; depth: number }
  | { type: 'unsubscribe'; id: number; exchange: string; symbol: string }
  /**
   * The gateway does not know the sender (it restarted, or it gave the sender up as dead): the
   * adapter drops its subscriptions and says hello again.
   */
  | { type: 'reset'; message: string }
  | { type: 'bye' };

export type ControlMessage = AdapterMessage | GatewayMessage;

/** Heartbeat period of both sides unless configured, and silent periods before a side is lost. */
export const DEFAULT_HEARTBEAT_MS = 1000;
export const DEFAULT_MISSED_HEARTBEATS = 3;
/** Messages queued per peer before sends fail (a peer that far behind is as good as dead). */
export const SEND_HIGH_WATER_MARK = 10_000;
/** ZeroMQ drops a peer whose message exceeds this; the codec rejects anything above 64 KiB anyway. */
export const MAX_FRAME_BYTES = 1024 * 1024;
/**
 * How long a side waits after its `bye` before closing. ZeroMQ's linger alone does not reliably
 * deliver a message sent just before close (measured: a few in a hundred were lost).
 */
export const CLOSE_FLUSH_MS = 50;
/** Malformed traffic is logged at most once per this period. */
export const MALFORMED_LOG_INTERVAL_MS = 10_000;
