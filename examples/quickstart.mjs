// A minimal client session: authenticate, subscribe, print a few ticks, unsubscribe.
//   node examples/quickstart.mjs <API_KEY> [ws://127.0.0.1:8765]
import WebSocket from 'ws';

const [apiKey, url = 'ws://127.0.0.1:8765'] = process.argv.slice(2);
if (!apiKey) {
  console.error('usage: node examples/quickstart.mjs <API_KEY> [URL]');
  process.exit(2);
}

const ws = new WebSocket(url);
let ticks = 0;
ws.on('open', () => ws.send(JSON.stringify({ action: 'authenticate', api_key: apiKey })));
ws.on('message', (raw) => {
  const message = JSON.parse(raw.toString());
  if (message.type === 'market_data') {
    const { symbol, exchange, mode, data } = message;
    console.log(`${exchange}:${symbol} mode=${mode} ltp=${data.ltp}`);
    if (++ticks === 10) ws.send(JSON.stringify({ action: 'unsubscribe_all' }));
    return;
  }
  console.log('<', JSON.stringify(message));
  if (message.type === 'auth' && message.status === 'success') {
    ws.send(JSON.stringify({
      action: 'subscribe',
      symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }, { symbol: 'NIFTY', exchange: 'NSE_INDEX' }],
      mode: 'Quote',
    }));
  }
  if (message.type === 'unsubscribe') ws.close();
  if (message.status === 'error') process.exitCode = 1;
});
ws.on('error', (error) => {
  console.error(`cannot connect to ${url}: ${error.message}`);
  process.exit(1);
});
