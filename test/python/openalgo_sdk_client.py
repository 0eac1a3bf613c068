"""A miniature of the OpenAlgo Python SDK's feed client (openalgo/feed.py v2.0.1), for
compatibility tests. Needs websocket-client (Debian: python3-websocket).

    openalgo_sdk_client.py --url ws://127.0.0.1:8765 --api-key KEY \
        --sub 1 NSE:RELIANCE --sub 2 NSE:INFY --sub 3 NSE_INDEX:NIFTY,NSE:TCS [--min-ticks 2]

What it does, as the SDK does:
  * WebSocketApp + run_forever(ping_interval=20, ping_timeout=10) in a daemon thread;
    on_open sends {"action":"authenticate","api_key":KEY};
  * connect() waits up to 5 s for the socket to open, then up to 5 s for a reply with
    type=="auth" and status=="success" (anything else: exit 3, as connect() returns False);
  * one bulk {"action":"subscribe","symbols":[{symbol,exchange}],"mode":N,"depth":5} per mode;
  * market data is read as the SDK reads it: type=="market_data", top-level exchange/symbol,
    int mode, data; mode 1 only if "ltp" in data, mode 2 always, mode 3 only if "depth" in data
    (the "handled" counts: the SDK's ltp/quote/depth callback fires), each filling the SDK's
    cache for that mode (get_ltp(), get_quotes(), get_depth()) the way the SDK fills it; a
    stream may be held in several modes at once (the SDK's subscribe_ltp, subscribe_quote and
    subscribe_depth of one symbol); errors, pongs and unsubscribe replies are ignored by the SDK;
  * one {"action":"unsubscribe","symbols":[{symbol,exchange,"mode":N}]} per mode.
The harness additionally records envelope violations and any tick arriving after the server
acknowledged every unsubscribe. A JSON summary is printed on stdout.
"""
import argparse
import json
import sys
import threading
import time

import websocket

AUTH_BUDGET_S = 5.0


class MiniFeed:
    def __init__(self, url, api_key):
        self.url = url
        self.api_key = api_key
        self.ws = None
        self.connected = False
        self.authenticated = False
        self.lock = threading.Lock()
        self.opened_at = None
        self.auth_ms = None
        self.auth_reply = None
        self.subscribed = {}  # "EXCHANGE:SYMBOL" -> set of modes
        self.per_symbol = {}  # "EXCHANGE:SYMBOL" -> str(mode) -> counts
        # The SDK's caches, as FeedAPI keeps them.
        self.ltp_data = {}
        self.quotes_data = {}
        self.depth_data = {}
        self.violations = []
        self.subscribe_replies = []
        self.unsubscribe_replies = []
        self.expected_unsubscribe_replies = None
        self.after_unsubscribe = None  # set when every unsubscribe is acknowledged
        self.ticks_after_unsubscribe = 0

    # --- connection, as FeedAPI.connect() ---------------------------------------------------
    def connect(self):
        def on_open(ws):
            with self.lock:
                self.opened_at = time.monotonic()
                self.connected = True
            ws.send(json.dumps({"action": "authenticate", "api_key": self.api_key}))

        def on_close(ws, code, reason):
            self.connected = False
            self.authenticated = False

        self.ws = websocket.WebSocketApp(
            self.url,
            on_open=on_open,
            on_message=lambda ws, message: self.on_message(message),
            on_error=lambda ws, error: None,
            on_close=on_close,
        )
        thread = threading.Thread(target=self.ws.run_forever, kwargs={"ping_interval": 20, "ping_timeout": 10})
        thread.daemon = True
        thread.start()

        deadline = time.time() + 5
        while not self.connected and time.time() < deadline:
            time.sleep(0.01)
        if not self.connected:
            return "connect"
        deadline = time.time() + AUTH_BUDGET_S
        while not self.authenticated and time.time() < deadline and self.connected:
            time.sleep(0.01)
        return None if self.authenticated else "auth"

    def violation(self, text):
        if len(self.violations) < 20:
            self.violations.append(text)

    # --- FeedAPI._process_message ---------------------------------------------------------
    def on_message(self, text):
        try:
            message = json.loads(text)
        except ValueError:
            self.violation("non-JSON frame: " + text[:100])
            return
        if not isinstance(message, dict):
            self.violation("frame is not an object: " + text[:100])
            return
        kind = message.get("type")
        with self.lock:
            if kind == "auth":
                self.auth_reply = message
                if message.get("status") == "success":
                    self.auth_ms = (time.monotonic() - self.opened_at) * 1000
                    self.authenticated = True
            elif kind == "subscribe":
                self.subscribe_replies.append(message)
            elif kind == "unsubscribe":
                self.unsubscribe_replies.append(message)
                if len(self.unsubscribe_replies) == self.expected_unsubscribe_replies:
                    self.after_unsubscribe = time.monotonic()
            elif kind == "market_data":
                self.market_data(message)

    def market_data(self, message):
        exchange, symbol, mode, data = (message.get(k) for k in ("exchange", "symbol", "mode", "data"))
        if not (isinstance(exchange, str) and exchange and isinstance(symbol, str) and symbol):
            self.violation("market_data without exchange/symbol strings: %r" % (message,))
            return
        key = "%s:%s" % (exchange, symbol)
        if type(mode) is not int or mode not in (1, 2, 3):
            self.violation("%s: mode is not an int 1..3: %r" % (key, mode))
            return
        if not isinstance(data, dict):
            self.violation("%s: data is not an object" % key)
            return
        if key not in self.subscribed:
            self.violation("%s: never subscribed" % key)
        elif mode not in self.subscribed[key]:
            self.violation("%s: tagged mode %d, subscribed at %s" % (key, mode, sorted(self.subscribed[key])))
        if self.after_unsubscribe is not None:
            self.ticks_after_unsubscribe += 1

        entry = self.per_symbol.setdefault(key, {}).setdefault(str(mode), {"received": 0, "handled": 0})
        entry["received"] += 1
        entry["data_keys"] = sorted(data.keys())
        now_ms = int(time.time() * 1000)
        # FeedAPI._process_message: which callback fires and what each cache keeps.
        if mode == 1 and "ltp" in data:
            entry["handled"] += 1
            self.ltp_data[key] = {"price": data.get("ltp"), "timestamp": data.get("timestamp", now_ms)}
        elif mode == 2:
            entry["handled"] += 1
            self.quotes_data[key] = {
                field: data.get(field, 0)
                for field in ("open", "high", "low", "close", "ltp", "volume", "last_trade_quantity", "avg_trade_price", "change", "change_percent")
            }
            self.quotes_data[key]["timestamp"] = data.get("timestamp", now_ms)
        elif mode == 3 and "depth" in data:
            entry["handled"] += 1
            self.depth_data[key] = {
                "ltp": data.get("ltp", 0),
                "timestamp": data.get("timestamp", now_ms),
                "depth": data.get("depth", {"buy": [], "sell": []}),
            }
        if "depth" in data and isinstance(data["depth"], dict):
            buy = data["depth"].get("buy") or []
            sell = data["depth"].get("sell") or []
            entry["depth"] = {
                "buy": len(buy),
                "sell": len(sell),
                "level_keys": sorted(buy[0].keys()) if buy and isinstance(buy[0], dict) else [],
            }

    # --- subscriptions, as v2.0.1 (one bulk message per mode) ------------------------------
    def subscribe(self, mode, instruments):
        for exchange, symbol in instruments:
            self.subscribed.setdefault("%s:%s" % (exchange, symbol), set()).add(mode)
        symbols = [{"symbol": s, "exchange": e} for e, s in instruments]
        self.ws.send(json.dumps({"action": "subscribe", "symbols": symbols, "mode": mode, "depth": 5}))

    def unsubscribe(self, mode, instruments):
        symbols = [{"symbol": s, "exchange": e, "mode": mode} for e, s in instruments]
        self.ws.send(json.dumps({"action": "unsubscribe", "symbols": symbols}))


def wait_until(condition, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--sub", nargs=2, action="append", default=[], metavar=("MODE", "EXCHANGE:SYMBOL[,…]"))
    parser.add_argument("--min-ticks", type=int, default=2)
    parser.add_argument("--collect-timeout", type=float, default=15.0)
    args = parser.parse_args()

    subs = []
    for mode, spec in args.sub:
        instruments = [tuple(item.split(":", 1)) for item in spec.split(",") if item]
        subs.append((int(mode), instruments))

    feed = MiniFeed(args.url, args.api_key)
    summary = {"auth": {"ok": False}}
    failure = feed.connect()
    reply = feed.auth_reply or {}
    summary["auth"] = {
        "ok": failure is None,
        "ms": feed.auth_ms,
        "failure": failure,
        "broker": reply.get("broker"),
        "user_id": reply.get("user_id"),
        "reply": reply,
    }
    if failure is not None:
        print(json.dumps(summary))
        sys.exit(2 if failure == "connect" else 3)

    for mode, instruments in subs:
        feed.subscribe(mode, instruments)

    def enough():
        with feed.lock:
            return all(
                feed.per_symbol.get("%s:%s" % inst, {}).get(str(mode), {}).get("received", 0) >= args.min_ticks
                for mode, instruments in subs
                for inst in instruments
            )

    summary["collected_all"] = wait_until(enough, args.collect_timeout)

    with feed.lock:
        feed.expected_unsubscribe_replies = len(subs)
    for mode, instruments in subs:
        feed.unsubscribe(mode, instruments)
    acknowledged = wait_until(lambda: feed.after_unsubscribe is not None, 5)
    time.sleep(0.5)  # any tick still arriving now was sent after the last unsubscribe took effect

    with feed.lock:
        modes = {}
        for key, by_mode in feed.per_symbol.items():
            for mode, entry in by_mode.items():
                m = modes.setdefault(mode, {"received": 0, "handled": 0, "data_keys": entry["data_keys"]})
                m["received"] += entry["received"]
                m["handled"] += entry["handled"]
        summary.update(
            {
                "modes": modes,
                "caches": {"ltp": feed.ltp_data, "quotes": feed.quotes_data, "depth": feed.depth_data},
                "symbols": feed.per_symbol,
                "violations": feed.violations,
                "subscribe_replies": [
                    {"status": r.get("status"), "subscriptions": r.get("subscriptions")} for r in feed.subscribe_replies
                ],
                "unsubscribe_acknowledged": acknowledged,
                "unsubscribe_replies": [r.get("status") for r in feed.unsubscribe_replies],
                "ticks_after_unsubscribe": feed.ticks_after_unsubscribe,
            }
        )
    feed.ws.close()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
