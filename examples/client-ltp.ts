// Live LTPs with the client SDK; Ctrl-C to stop.
//   npx tsx examples/client-ltp.ts <API_KEY> [ws://127.0.0.1:8765]
// In your own project the import is `from 'tickcast/client'`.
import { TickcastClient } from '../src/client/index.js';

const [apiKey, url = 'ws://127.0.0.1:8765'] = process.argv.slice(2);
if (!apiKey) {
  console.error('usage: npx tsx examples/client-ltp.ts <API_KEY> [URL]');
  process.exit(2);
}

const client = new TickcastClient({ url, apiKey });
await client.connect();
client.subscribe(['NSE:RELIANCE', 'NSE_INDEX:NIFTY'], 'ltp', ({ exchange, symbol, data }) => {
  console.log(`${exchange}:${symbol} ${data.ltp}`);
});
process.once('SIGINT', () => void client.close());
