/**
 * Every error code tickcast emits, in one table.
 *
 * Client protocol codes travel in OpenAlgo's error envelope
 * `{"status":"error","code":CODE,"message":TEXT}`; their names and messages are OpenAlgo's where
 * OpenAlgo has them. Close codes end a WebSocket. Operational codes are for the operator
 * (start-up, configuration, storage) and reach the log or the CLI's stderr.
 */

export const ProtocolErrorCode = {
  /** The frame is not JSON. */
  INVALID_JSON: 'INVALID_JSON',
  /** `action` (or `type`) is missing or not one the gateway knows. */
  INVALID_ACTION: 'INVALID_ACTION',
  /** The request broke the server in a way OpenAlgo reports with Python's exception text. */
  SERVER_ERROR: 'SERVER_ERROR',
  PROCESSING_ERROR: 'PROCESSING_ERROR',
  AUTHENTICATION_ERROR: 'AUTHENTICATION_ERROR',
  NOT_AUTHENTICATED: 'NOT_AUTHENTICATED',
  BROKER_ERROR: 'BROKER_ERROR',
  BROKER_INIT_ERROR: 'BROKER_INIT_ERROR',
  BROKER_CONNECTION_ERROR: 'BROKER_CONNECTION_ERROR',
  INVALID_MODE: 'INVALID_MODE',
  INVALID_PARAMETERS: 'INVALID_PARAMETERS',
  BROKER_LIST_ERROR: 'BROKER_LIST_ERROR',
  /** tickcast: a frame above the message limit (the connection stays open). */
  MESSAGE_TOO_LARGE: 'MESSAGE_TOO_LARGE',
  /** tickcast: a per-client limit (subscriptions, request rate) was reached. */
  LIMIT_EXCEEDED: 'LIMIT_EXCEEDED',
  /** tickcast (`GET /api/ticks`): the range asked for is longer than TICKCAST_TICKS_MAX_RANGE_HOURS. */
  RANGE_TOO_LARGE: 'RANGE_TOO_LARGE',
  /** tickcast (`GET /api/ticks`, HTTP 503 with Retry-After): this gateway process is already running its most reads. */
  HISTORY_BUSY: 'HISTORY_BUSY',
  /** tickcast (`GET /api/ticks`, `/api/history/streams`, HTTP 503 with Retry-After): the history store cannot be reached (its PostgreSQL server is away). */
  HISTORY_UNAVAILABLE: 'HISTORY_UNAVAILABLE',
} as const;
export type ProtocolErrorCode = (typeof ProtocolErrorCode)[keyof typeof ProtocolErrorCode];

/** Fixed messages (OpenAlgo's wording). Codes with variable text build theirs where raised. */
export const ProtocolMessage = {
  INVALID_JSON: 'Invalid JSON message',
  API_KEY_REQUIRED: 'API key is required',
  INVALID_API_KEY: 'Invalid API key',
  NOT_AUTHENTICATED: 'You must authenticate first',
  NO_BROKER: 'No broker configuration found for user',
  ADAPTER_NOT_FOUND: 'Broker adapter not found',
  BROKER_INFO_UNAVAILABLE: 'Broker information not available',
  NO_SYMBOLS: 'At least one symbol must be specified',
  NO_UNSUBSCRIBE_TARGET: 'Either symbols or unsubscribe_all is required',
  SUBSCRIPTION_FAILED: 'Subscription failed',
  /** tickcast: the key store (OpenAlgo's database, DATABASE_URL) cannot be reached just now. */
  KEY_STORE_UNAVAILABLE: "API keys cannot be checked now: OpenAlgo's database cannot be reached; try again shortly",
} as const;

/** WebSocket close codes. 4xxx are application codes; 1xxx are RFC 6455's. */
export const CloseCode = {
  /** Server shutting down. */
  GOING_AWAY: 1001,
  /** A frame above the hard frame limit. */
  MESSAGE_TOO_BIG: 1009,
  /** No pong to a protocol ping within WS_PING_TIMEOUT (as OpenAlgo's `websockets`). */
  KEEPALIVE_TIMEOUT: 1011,
  /** Not authenticated within WS_AUTH_GRACE_SECONDS (OpenAlgo's code). */
  AUTH_TIMEOUT: 4401,
  /** The client kept more unsent data queued than its hard limit allows. */
  SLOW_CONSUMER: 4408,
} as const;

export const CloseReason: Record<number, string> = {
  [CloseCode.GOING_AWAY]: 'server shutting down',
  [CloseCode.MESSAGE_TOO_BIG]: 'message too big',
  [CloseCode.KEEPALIVE_TIMEOUT]: 'keepalive ping timeout',
  [CloseCode.AUTH_TIMEOUT]: 'auth timeout',
  [CloseCode.SLOW_CONSUMER]: 'slow consumer',
};

/**
 * Errors the client SDK (`tickcast/client`) raises itself. Errors the gateway reports
 * (`AUTHENTICATION_ERROR`, `LIMIT_EXCEEDED`, …) keep the gateway's code.
 */
export const ClientErrorCode = {
  /** A bad argument or option: an instrument, a mode, a URL. Nothing was sent. */
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  /** No WebSocket implementation: no global `WebSocket` and the `ws` package cannot be loaded. */
  NO_WEBSOCKET: 'NO_WEBSOCKET',
  /** The WebSocket could not be opened, or closed before authentication finished. */
  CONNECT_FAILED: 'CONNECT_FAILED',
  /** The connection was lost before a request's reply arrived. */
  CONNECTION_LOST: 'CONNECTION_LOST',
  /** No reply within the request timeout; the connection is treated as dead and replaced. */
  REQUEST_TIMEOUT: 'REQUEST_TIMEOUT',
  /** The client was closed (by `close()`) while the operation was pending. */
  CLIENT_CLOSED: 'CLIENT_CLOSED',
  /** The gateway refused a subscription for an instrument (the reply's per-symbol message). */
  SUBSCRIBE_FAILED: 'SUBSCRIBE_FAILED',
  /** A callback or event listener of the application threw; the client carries on. */
  CALLBACK_FAILED: 'CALLBACK_FAILED',
  /** The gateway sent a frame that is neither JSON nor MessagePack; it was skipped. */
  PROTOCOL_ERROR: 'PROTOCOL_ERROR',
} as const;
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** Operational error codes (start-up, configuration, storage, CLI). */
export const ErrorCode = {
  CONFIG_INVALID: 'CONFIG_INVALID',
  PORT_IN_USE: 'PORT_IN_USE',
  /** A gateway (or an adapter with the same feed id) of this instance is already running. */
  INSTANCE_RUNNING: 'INSTANCE_RUNNING',
  /** No gateway of the instance could be found (an adapter waiting for it gave up). */
  GATEWAY_NOT_FOUND: 'GATEWAY_NOT_FOUND',
  BUS_BIND_FAILED: 'BUS_BIND_FAILED',
  /** The NATS bus could not be reached at start (no server answered at any of its URLs). */
  BUS_UNREACHABLE: 'BUS_UNREACHABLE',
  STORE_FAILED: 'STORE_FAILED',
  /**
   * No space left on the disk holding the data directory (SQLITE_FULL, ENOSPC, EDQUOT, or SQLite
   * failing to extend its shared-memory file on a full disk): exit 1 naming the directory and
   * saying to free space there. What was being written is not written; what is stored is intact.
   */
  DISK_FULL: 'DISK_FULL',
  /**
   * The store holds API keys or broker credentials made with another pepper than the one
   * configured (or none is configured and the pepper file is gone); nothing starts, so the keys are
   * not silently dead.
   */
  PEPPER_MISMATCH: 'PEPPER_MISMATCH',
  KEY_NOT_FOUND: 'KEY_NOT_FOUND',
  USAGE: 'USAGE',
  /**
   * The database DATABASE_URL names cannot be reached (a server that does not answer, a SQLite
   * file that cannot be opened). At start tickcast exits 1; while it runs, authentications that
   * need the database and symbol lookups fail with this (clients are told so) until it is back.
   */
  DATABASE_UNREACHABLE: 'DATABASE_UNREACHABLE',
  /** DATABASE_URL's database is not OpenAlgo's: tables or columns tickcast reads are missing, or
   * its role may not read them (exit 2, naming what is missing). */
  DATABASE_SCHEMA: 'DATABASE_SCHEMA',
  /** A command that would write what OpenAlgo manages (API keys, broker sessions, the symbol
   * master) while DATABASE_URL points at OpenAlgo's database, which tickcast never writes (exit 2). */
  MANAGED_BY_OPENALGO: 'MANAGED_BY_OPENALGO',
  /** A gateway worker process (`--workers N`) could not start. */
  WORKER_FAILED: 'WORKER_FAILED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Codes that ask the operator to change the command or the configuration: the CLI exits 2 on
 * these, 1 on every other. */
export const CONFIGURATION_CODES: ReadonlySet<ErrorCode> = new Set([
  ErrorCode.USAGE,
  ErrorCode.CONFIG_INVALID,
  ErrorCode.PEPPER_MISMATCH,
  ErrorCode.DATABASE_SCHEMA,
  ErrorCode.MANAGED_BY_OPENALGO,
]);

export class TickcastError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TickcastError';
  }
}
