/**
 * The control protocol between gateways and out-of-process adapters, the same over every
 * transport (ZeroMQ: transport-zmq.ts, NATS: transport-nats.ts). docs/control-protocol.md is
 * its full description; this file is its types and constants. Pure.
 *
 * An adapter serves one feed to any number of gateways (one over ZeroMQ; every node of the
 * instance over NATS). It announces itself; each gateway that wants it registers with it (a
 * handshake that proves both ends hold the instance's control key), replays the streams its
 * clients want, heartbeats, and says bye when it stops. The adapter subscribes upstream to the
 * union of what its gateways want and releases a gateway's share when it says bye or falls
 * silent. A registration means "count what you hold for me as pending: I replay my whole set".
 *
 * Every frame is `<mac> <json>`: 64 hex digits of HMAC-SHA256 over the JSON text, one space,
 * then one JSON object. `announce`, `register`, `registered`, `refused` and `reset` are keyed
 * with the instance key; every other message belongs to a registration and is keyed with that
 * registration's keys (derived from both ends' nonces), numbered, and accepted only in order.
 */
import type { FeedStatus } from '../feed.js';
import type { Mode } from '../protocol/modes.js';

/** Bumped on any incompatible change; a peer speaking another version is refused, both named. */
export const PROTOCOL_VERSION = 2;

/** Who an adapter is: its announcement, and again in `registered`. */
export interface AdapterInfo {
  protocol: number;
  /** Feed id its ticks are tagged with; one live adapter per feed id and instance. */
  feed: string;
  broker: string;
  /** Brokers whose users it serves, or '*' (any broker no other adapter serves). */
  brokers: string[] | '*';
  instance: string;
  pid: number;
  host: string;
  /** Random per adapter process: another epoch is another process (it restarted). */
  epoch: number;
  /** How often it heartbeats and announces (ms). */
  heartbeatMs: number;
  /**
   * Present on a feed host (docs/control-protocol.md, Feed hosts): brokers whose users' feeds it
   * opens on demand, one per (broker, user), each under the feed id the gateway gives it.
   */
  hosts?: string[];
}

/** Adapter → every gateway, every heartbeat and at start. Keyed with the instance key. */
export type Announce = { type: 'announce' } & AdapterInfo;

/** Gateway → adapter: "register me (again)". Keyed with the instance key. */
export interface Register {
  type: 'register';
  protocol: number;
  /** Unique per gateway process. */
  gateway: string;
  /** The gateway's registration round with this adapter; greater on every new registration. */
  session: number;
  /** 32 random bytes (hex), fresh per registration. */
  nonce: string;
  heartbeatMs: number;
  pid: number;
  host: string;
}

/** Adapter → gateway: the answer to `register`. Keyed with the instance key. */
export type Registered = {
  type: 'registered';
  gateway: string;
  session: number;
  /** The register's nonce, echoed: binds this answer to that request. */
  gatewayNonce: string;
  /** 32 random bytes (hex), fresh per registration. */
  nonce: string;
  status: FeedStatus;
  message?: string;
} & AdapterInfo;

/**
 * Either side turns the other away. Keyed with the instance key. A gateway refuses an announce
 * (`epoch`: the feed id is taken, another instance, another broker); an adapter refuses a
 * register (`gateway` and `session`: another protocol version). A refused adapter stops.
 */
export interface Refused {
  type: 'refused';
  epoch?: number;
  gateway?: string;
  session?: number;
  message: string;
}

/** Adapter → gateway: "I do not know this registration: register again". Keyed with the instance key. */
export interface Reset {
  type: 'reset';
  gateway: string;
  session: number;
  message: string;
}

/** Within a registration: which one, and the sender's message number (1, 2, 3, … per direction). */
interface InSession {
  gateway: string;
  session: number;
  seq: number;
}

/** Count and hash-sum of a gateway's (stream, mode) set: equal digests mean (almost surely) equal sets. */
export interface Digest {
  count: number;
  sum: number;
}

/** Gateway → adapter within a registration. */
export type GatewayCommand =
  /** With a digest only while no command is in flight (both sides then hold the same set). */
  | ({ type: 'heartbeat'; digest?: Digest } & InSession)
  /** `feed`: the hosted feed the stream belongs to (to a feed host only). */
  | ({ type: 'subscribe'; id: number; exchange: string; symbol: string; mode: Mode; depth: number; feed?: string } & InSession)
  | ({ type: 'unsubscribe'; id: number; exchange: string; symbol: string; feed?: string } & InSession)
  /** To a feed host: open the user's feed (create and connect their broker adapter). */
  | ({ type: 'open'; id: number; feed: string; broker: string; user: string } & InSession)
  /** To a feed host: the user's broker session changed; reopen the feed with fresh credentials. */
  | ({ type: 'relogin'; id: number; feed: string } & InSession)
  /** The gateway stops: its share is released at once. */
  | ({ type: 'bye' } & InSession);

/** Adapter → gateway within a registration. */
export type AdapterEvent =
  /** The answer to every heartbeat; `resync`: the digests differ, replay the whole set. */
  | ({ type: 'heartbeat'; resync: boolean; status: FeedStatus; message?: string } & InSession)
  | ({ type: 'reply'; id: number; ok: true; depth?: number } & InSession)
  | ({ type: 'reply'; id: number; ok: false; message: string } & InSession)
  /** Its upstream status changed; with `feed`, a hosted feed's status. */
  | ({ type: 'status'; status: FeedStatus; message?: string; feed?: string } & InSession)
  /** The adapter stops: the gateway reports the feed down at once. */
  | ({ type: 'bye' } & InSession);

/** What a gateway receives. */
export type ToGateway = Announce | Registered | Refused | Reset | AdapterEvent;
/** What an adapter receives. */
export type ToAdapter = Register | Refused | GatewayCommand;
export type ControlMessage = ToGateway | ToAdapter;

/** Heartbeat period of both sides unless configured, and silent periods before a side is lost. */
export const DEFAULT_HEARTBEAT_MS = 1000;
export const DEFAULT_MISSED_HEARTBEATS = 3;
/** How long a subscribe or unsubscribe waits for the adapter's reply unless configured. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 5000;
/** Malformed or unauthenticated traffic is logged at most once per this period. */
export const MALFORMED_LOG_INTERVAL_MS = 10_000;
/** Most gateways one adapter keeps registrations for, and most feeds one gateway tracks. */
export const MAX_PEERS = 1024;
/** Longest user name in an `open`. */
export const MAX_USER_LENGTH = 256;
