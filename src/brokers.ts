/**
 * The brokers tickcast knows: its native adapters, every broker OpenAlgo streams for, and the
 * simulator. A user's broker is checked against this list (`tickcast keys create --broker`), and
 * the simulator may serve only brokers that are not real ones. Pure data.
 */

/** The simulated market's broker name. */
export const SIMULATOR_BROKER = 'simulator';

/**
 * Brokers with a native tickcast adapter (a user's own feed from stored credentials); the
 * adapters are built in adapters/broker-factory.ts, whose list a test holds equal to this one.
 */
export const NATIVE_BROKERS: readonly string[] = ['zerodha', 'angel', 'dhan', 'upstox', 'shoonya', 'flattrade'];

/**
 * OpenAlgo's broker plugins (its `.sample.env` VALID_BROKERS, the brokers its
 * `websocket_proxy/broker_factory.py` registers, and older names still found in installs).
 */
export const OPENALGO_BROKERS: readonly string[] = [
  'aliceblue', 'angel', 'arrow', 'compositedge', 'definedge', 'deltaexchange', 'dhan', 'dhan_sandbox',
  'firstock', 'fivepaisa', 'fivepaisaxts', 'flattrade', 'fyers', 'groww', 'hdfcsecurities', 'hdfcsky',
  'ibulls', 'iifl', 'iiflcapital', 'indmoney', 'jainam', 'jainampro', 'jainamxts', 'kotak', 'motilal',
  'mstock', 'nubra', 'paytm', 'pocketful', 'rmoney', 'samco', 'shoonya', 'tradejini', 'tradesmart',
  'upstox', 'wisdom', 'zebu', 'zerodha',
];

const REAL = new Set([...NATIVE_BROKERS, ...OPENALGO_BROKERS]);

/** Whether `broker` is a real broker (native or OpenAlgo's), in any letter case. */
export function isRealBroker(broker: string): boolean {
  return REAL.has(broker.toLowerCase());
}

/** Whether tickcast knows `broker`: a real one or the simulator. */
export function isKnownBroker(broker: string): boolean {
  const name = broker.toLowerCase();
  return name === SIMULATOR_BROKER || REAL.has(name);
}

/** Every known broker name, sorted (for messages and `get_supported_brokers`). */
export function knownBrokers(): string[] {
  return [SIMULATOR_BROKER, ...REAL].sort();
}
