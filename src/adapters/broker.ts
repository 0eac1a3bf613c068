/**
 * What broker adapters share: the normalised tick their decoders produce, and the two things
 * they read from the instance's store — the symbol master and the user's broker credentials.
 */
import type { BusPublisher } from '../bus/bus.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../observability/logger.js';
import type { BrokerInstrument, BrokerName, SymbolLookup } from '../symbols/instrument.js';

export type { BrokerInstrument, BrokerName, SymbolLookup };

export interface DepthLevel {
  price: number;
  quantity: number;
  /** Orders at the level; null where the feed does not say. */
  orders: number | null;
}

/**
 * One instrument's update as the broker sent it, normalised (wire-formats spec §3): prices
 * scaled exactly per segment, timestamps as epoch milliseconds (UTC instants), and fields the
 * packet does not carry left undefined — missing is not zero.
 */
export interface BrokerTick {
  broker: BrokerName;
  /** The broker's instrument token, as a string (Kite's are integers on the wire). */
  token: string;
  /** The broker's exchange/segment name (Kite `NSE`, `CDS`, `INDICES`…; Angel `nse_cm`, `mcx_fo`…). */
  exchange: string;
  mode: 'ltp' | 'quote' | 'full' | 'depth20';
  isIndex: boolean;
  ltp: number;
  lastQuantity?: number;
  averagePrice?: number;
  volume?: number;
  totalBuyQuantity?: number;
  totalSellQuantity?: number;
  open?: number;
  high?: number;
  low?: number;
  /** Previous close. */
  close?: number;
  oi?: number;
  oiDayHigh?: number;
  oiDayLow?: number;
  upperCircuit?: number;
  lowerCircuit?: number;
  high52w?: number;
  low52w?: number;
  /** Epoch ms. */
  exchangeTimestamp?: number;
  lastTradeTime?: number;
  sequence?: number;
  depth?: { buy: DepthLevel[]; sell: DepthLevel[] };
}

export interface BrokerCredentials {
  /** The broker app's API key (Kite `api_key`; Angel `x-api-key`). */
  apiKey: string;
  /** Kite access token; Angel JWT (the `Authorization` header). */
  accessToken: string;
  /** Angel feed token. */
  feedToken?: string;
  /** Angel client code. */
  clientCode?: string;
}

/** A user's credentials, read afresh before every (re)connect so a re-login takes effect. */
export interface CredentialSource {
  load(): Promise<BrokerCredentials | undefined>;
}

/** What every broker adapter is built from (broker-factory.ts supplies it); each adds its timings. */
export interface BrokerFeedOptions {
  feed: string;
  /** The OpenAlgo user whose broker session this streams; for logs and messages only. */
  user: string;
  /** The broker's WebSocket endpoint; tests point it at a local fake. */
  url?: string;
  symbols: SymbolLookup;
  credentials: CredentialSource;
  publisher: BusPublisher;
  clock: Clock;
  logger: Logger;
}
