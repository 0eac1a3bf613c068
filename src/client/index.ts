/**
 * tickcast's client SDK, for Node and browsers: `import { TickcastClient } from 'tickcast/client'`.
 * See docs/client.md. Everything exported here is the public API.
 */
export { TickcastClient } from './client.js';
export { TickcastClientError } from './client-error.js';
export { parseInstrument, parseInstruments, parseMode } from './instruments.js';
export { ClientErrorCode } from '../errors.js';
export type {
  BookLevel,
  ClientErrorShape,
  ClientEvents,
  ClientOptions,
  ClientState,
  ConnectedEvent,
  DepthEntry,
  DepthLevel,
  DepthSnapshot,
  DepthTick,
  DisconnectedEvent,
  FeedStatusEvent,
  GapEvent,
  HistoryOptions,
  HistoryStream,
  HistorySummary,
  HistoryTick,
  Instrument,
  InstrumentInput,
  LtpSnapshot,
  LtpTick,
  MarketData,
  Mode,
  ModeInput,
  NegotiatedExtensions,
  QuoteEntry,
  QuoteSnapshot,
  QuoteTick,
  ReconnectOptions,
  ReconnectingEvent,
  RecoveredEvent,
  RecoveryGapReason,
  SubscribeResult,
  SubscriptionHandle,
  TickOf,
  TimeInput,
  WebSocketConstructor,
  WebSocketLike,
} from './types.js';
