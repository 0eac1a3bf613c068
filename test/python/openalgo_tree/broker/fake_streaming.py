"""The fake market behind the stand-in broker adapters (dhan, fyers), steered by the tests.

A FakeStreamingAdapter is an OpenAlgo BaseBrokerWebSocketAdapter. initialize() reads the user's
broker token with database.auth_db.get_auth_token; connect() starts a daemon thread that every
FAKE_TICK_MS ms (default 50) publishes, through self.publish_market_data(topic, data), one tick per
subscribed (symbol, exchange) at its highest subscribed mode, topic EXCHANGE_SYMBOL_{LTP|QUOTE|DEPTH}.
Each tick carries OpenAlgo's fields for its mode plus who it came from: fake_user, fake_broker and
fake_token (the first 8 characters of the token). Depth ticks have as many levels as the adapter
reports in `actual_depth`: dhan 20 when more than 5 were asked, else 5; fyers always 5.

Behaviour, read at every call from the JSON file FAKE_OPENALGO_BEHAVIOUR (missing: all normal):

    {"<broker>" or "<broker>:<user>": {
        "initialize" | "connect" | "subscribe": "ok" | "error" | "raise" | "hang",
        "ticks": "on" | "stop",        stop: stay connected, publish nothing
        "die": false,                  true: the tick thread exits and `connected` turns False
        "raw_socket": false,           true: publish on self.socket directly, not publish_market_data
        "unknown_symbols": ["NOSUCH"]  subscribe answers SYMBOL_NOT_FOUND for these
    }}

The "<broker>:<user>" entry's fields take precedence over the "<broker>" entry's.

Every call is appended as one JSON line to FAKE_OPENALGO_CALLS (if set):
{"broker", "user", "call", "symbol", "exchange", "mode", "depth", "pid", "t"}.
"""
import json
import os
import threading
import time

from database.auth_db import get_auth_token
from websocket_proxy.base_adapter import BaseBrokerWebSocketAdapter

TOPIC_MODE = {1: "LTP", 2: "QUOTE", 3: "DEPTH"}


def behaviour(broker, user):
    path = os.getenv("FAKE_OPENALGO_BEHAVIOUR")
    if not path:
        return {}
    spec = {}
    for attempt in range(5):  # a test may be rewriting the file: an empty or partial read is retried
        try:
            with open(path, encoding="utf-8") as f:
                spec = json.load(f)
            break
        except OSError:
            return {}
        except ValueError:
            time.sleep(0.005)
    if not isinstance(spec, dict):
        return {}
    merged = dict(spec.get(broker) or {})
    if user is not None:
        merged.update(spec.get(f"{broker}:{user}") or {})
    return merged


def log_call(broker, user, call, symbol=None, exchange=None, mode=None, depth=None):
    path = os.getenv("FAKE_OPENALGO_CALLS")
    if not path:
        return
    line = json.dumps({"broker": broker, "user": user, "call": call, "symbol": symbol, "exchange": exchange,
                       "mode": mode, "depth": depth, "pid": os.getpid(), "t": time.time()}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def hang():
    while True:
        time.sleep(3600)


class FakeStreamingAdapter(BaseBrokerWebSocketAdapter):
    BROKER = "fake"
    BYPASS_TOKEN_CACHE = False  # Dhan's adapter reads the token with bypass_cache=True

    def __init__(self):
        super().__init__()
        self.broker_name = self.BROKER
        self.user_id = None
        self.token = None
        self.fake_subs = {}  # (symbol, exchange) -> {mode: depth}
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._seq = 0

    # ── steering ──

    def _act(self, call):
        """Applies the behaviour for this call: returns an error response, raises, hangs or returns None."""
        what = behaviour(self.BROKER, self.user_id).get(call, "ok")
        if what == "hang":
            hang()
        if what == "raise":
            raise RuntimeError(f"fake {self.BROKER} {call} raised")
        if what == "error":
            return self._create_error_response("FAKE_ERROR", f"fake {self.BROKER} {call} error")
        return None

    def _depth_for(self, depth_level):
        return 5

    # ── OpenAlgo's adapter interface ──

    def initialize(self, broker_name, user_id, auth_data=None):
        self.user_id = user_id
        log_call(self.BROKER, user_id, "initialize")
        failed = self._act("initialize")
        if failed:
            return failed
        token = (auth_data or {}).get("auth_token") or get_auth_token(user_id, bypass_cache=self.BYPASS_TOKEN_CACHE)
        if not token:
            return self._create_error_response("NO_TOKEN", f"No authentication token found for user {user_id}")
        self.token = token
        return self._initialized_response()

    def _initialized_response(self):
        return None

    def connect(self):
        log_call(self.BROKER, self.user_id, "connect")
        failed = self._act("connect")
        if failed:
            return failed
        if self.token is None:
            return self._create_error_response("NOT_INITIALIZED", "initialize() first")
        self._stop.clear()
        self.connected = True
        self._thread = threading.Thread(target=self._run, name=f"fake-{self.BROKER}-{self.user_id}", daemon=True)
        self._thread.start()
        return self._connected_response()

    def _connected_response(self):
        return None

    def subscribe(self, symbol, exchange, mode=2, depth_level=5):
        log_call(self.BROKER, self.user_id, "subscribe", symbol, exchange, mode, depth_level)
        failed = self._act("subscribe")
        if failed:
            return failed
        if mode not in (1, 2, 3):
            return self._create_error_response("INVALID_MODE", f"Invalid mode {mode}")
        if symbol in (behaviour(self.BROKER, self.user_id).get("unknown_symbols") or []):
            return self._create_error_response("SYMBOL_NOT_FOUND", f"Symbol {symbol} not found for exchange {exchange}")
        actual_depth = self._depth_for(depth_level)
        with self.lock:
            self.fake_subs.setdefault((symbol, exchange), {})[mode] = actual_depth
        return self._create_success_response("Subscription requested", symbol=symbol, exchange=exchange, mode=mode,
                                             requested_depth=depth_level, actual_depth=actual_depth)

    def unsubscribe(self, symbol, exchange, mode=2):
        log_call(self.BROKER, self.user_id, "unsubscribe", symbol, exchange, mode)
        with self.lock:
            modes = self.fake_subs.get((symbol, exchange))
            if not modes or mode not in modes:
                return self._create_error_response("NOT_SUBSCRIBED", f"Not subscribed to {symbol}.{exchange}")
            self._drop(symbol, exchange, mode)
        return self._create_success_response(f"Unsubscribed from {symbol}.{exchange}")

    def _drop(self, symbol, exchange, mode):
        modes = self.fake_subs[(symbol, exchange)]
        del modes[mode]
        if not modes:
            del self.fake_subs[(symbol, exchange)]

    def unsubscribe_all(self):
        with self.lock:
            self.fake_subs.clear()
        return self._create_success_response("Unsubscribed from all")

    def disconnect(self):
        log_call(self.BROKER, self.user_id, "disconnect")
        self._stop.set()
        self.connected = False
        with self.lock:
            self.fake_subs.clear()
        self.cleanup_zmq()

    # ── the fake market ──

    def _run(self):
        period = max(1, int(os.getenv("FAKE_TICK_MS", "50"))) / 1000
        while not self._stop.wait(period):
            how = behaviour(self.BROKER, self.user_id)
            if how.get("die"):
                self.connected = False
                return
            if how.get("ticks", "on") == "stop":
                continue
            with self.lock:
                streams = [(s, e, max(modes), modes[max(modes)]) for (s, e), modes in self.fake_subs.items()]
            for symbol, exchange, mode, depth in streams:
                topic = f"{exchange}_{symbol}_{TOPIC_MODE[mode]}"
                data = self._tick(symbol, exchange, mode, depth)
                if how.get("raw_socket"):
                    try:
                        self.socket.send_multipart([topic.encode("utf-8"), json.dumps(data).encode("utf-8")])
                    except Exception:
                        pass
                else:
                    self.publish_market_data(topic, data)

    def _tick(self, symbol, exchange, mode, depth):
        self._seq += 1
        now_ms = int(time.time() * 1000)
        base = 100 + sum(symbol.encode("utf-8")) % 900
        ltp = round(base + (self._seq % 20) * 0.05, 2)
        data = {"symbol": symbol, "exchange": exchange, "mode": mode, "ltp": ltp, "ltt": now_ms, "timestamp": now_ms,
                "fake_user": self.user_id, "fake_broker": self.BROKER, "fake_token": (self.token or "")[:8]}
        if mode >= 2:
            data.update({"open": base, "high": base + 1, "low": base - 1, "close": base, "volume": 1000 + self._seq,
                         "last_trade_quantity": 1, "average_price": base, "total_buy_quantity": 500,
                         "total_sell_quantity": 500})
        if mode == 3:
            data["depth"] = {
                "buy": [{"price": round(ltp - 0.05 * (i + 1), 2), "quantity": 10 * (i + 1), "orders": i + 1} for i in range(depth)],
                "sell": [{"price": round(ltp + 0.05 * (i + 1), 2), "quantity": 10 * (i + 1), "orders": i + 1} for i in range(depth)],
            }
        return data
