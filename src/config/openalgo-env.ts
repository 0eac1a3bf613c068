/**
 * Which of an OpenAlgo `.env` file's settings concern the market-data proxy tickcast replaces,
 * so the ones tickcast does not honour can be named at start instead of silently ignored.
 *
 * The rule: a setting concerns the proxy when OpenAlgo's proxy process reads it: the names
 * below (from OpenAlgo's `.sample.env` and `websocket_proxy/`: the server, its connection pool,
 * the broker adapters it runs, the auth cache it keeps), plus any `WS_*` or `ZMQ_*` name, so a
 * proxy setting OpenAlgo adds later is reported too. Everything else in the file (Flask, CORS,
 * CSP, CSRF, rate limits, logging, MCP, the order-update service, WEBSOCKET_URL that Flask hands
 * to browsers) is OpenAlgo's app's alone and is not reported one by one. Pure.
 */

/** OpenAlgo's proxy-side variables, whether tickcast honours them or not. */
export const OPENALGO_PROXY_SETTINGS: readonly string[] = [
  'WEBSOCKET_HOST',
  'WEBSOCKET_PORT',
  'WS_AUTH_GRACE_SECONDS',
  'WS_MAX_QUEUE',
  'WS_PING_INTERVAL',
  'WS_PING_TIMEOUT',
  'WS_STALE_TICK_WARN_SECONDS',
  'WS_PROXY_STATS_FILE',
  'ZMQ_HOST',
  'ZMQ_PORT',
  'MAX_SYMBOLS_PER_WEBSOCKET',
  'MAX_WEBSOCKET_CONNECTIONS',
  'ENABLE_CONNECTION_POOLING',
  'API_KEY_PEPPER',
  'FERNET_SALT',
  'DATABASE_URL',
  'SESSION_EXPIRY_TIME',
  'VALID_BROKERS',
  'BROKER_API_KEY',
  'BROKER_API_SECRET',
  'BROKER_API_KEY_MARKET',
  'BROKER_API_SECRET_MARKET',
];

const PROXY_PREFIXES = ['WS_', 'ZMQ_'];

export function concernsProxy(name: string): boolean {
  return OPENALGO_PROXY_SETTINGS.includes(name) || PROXY_PREFIXES.some((prefix) => name.startsWith(prefix));
}

/**
 * The proxy settings set in an OpenAlgo `.env` (`names`, in file order) that tickcast has no
 * option for (`honoured`: the variables of tickcast's options).
 */
export function unusedProxySettings(names: Iterable<string>, honoured: ReadonlySet<string>): string[] {
  return [...names].filter((name) => concernsProxy(name) && !honoured.has(name));
}
