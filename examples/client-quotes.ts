// Quotes over MessagePack, with the connection's events and the latest-value cache:
// prints the cached quotes every two seconds, as OpenAlgo's SDK `get_quotes()` returns them.
//   npx tsx examples/client-quotes.ts <API_KEY> [ws://127.0.0.1:8765]
// In your own project the import is `from 'tickcast/client'`.
import { TickcastClient } from '../src/client/index.js';

const [apiKey, url = 'ws://127.0.0.1:8765'] = process.argv.slice(2);
if (!apiKey) {
  console.error('usage: npx tsx examples/client-quotes.ts <API_KEY> [URL]');
  process.exit(2);
}

const client = new TickcastClient({ url, apiKey, encoding: 'msgpack', reconnect: { initialDelayMs: 250, maxDelayMs: 10_000 } });
client.on('connected', ({ broker, reconnected }) => console.error(`${reconnected ? 'reconnected' : 'connected'} (broker ${broker})`));
client.on('disconnected', ({ code, willReconnect }) => console.error(`disconnected (code ${code})${willReconnect ? ', reconnecting' : ''}`));
client.on('reconnecting', ({ attempt, delayMs }) => console.error(`attempt ${attempt} in ${delayMs} ms`));
client.on('feed_status', ({ feed, status, message }) => console.error(`feed ${feed} is ${status}${message ? `: ${message}` : ''}`));
client.on('gap', ({ stream, missed }) => console.error(`${stream}: missed ${missed} tick(s)`));
client.on('error', (error) => console.error(`${error.code}: ${error.message}`));

await client.connect();
const quotes = client.subscribe(['NSE:TCS', 'NSE:INFY', { exchange: 'NSE', symbol: 'HDFCBANK' }], 'quote');
for (const result of await quotes.ready) {
  if (!result.ok) console.error(`${result.instrument.exchange}:${result.instrument.symbol}: ${result.message}`);
}

const timer = setInterval(() => {
  for (const [exchange, symbols] of Object.entries(client.getQuotes().quote)) {
    for (const [symbol, q] of Object.entries(symbols)) {
      console.log(`${exchange}:${symbol} ltp=${q.ltp} open=${q.open} high=${q.high} low=${q.low} volume=${q.volume} change=${q.change_percent}%`);
    }
  }
}, 2000);
process.once('SIGINT', () => {
  clearInterval(timer);
  void client.close();
});
