#!/usr/bin/python3
"""Noren (Shoonya, Flattrade, ...) WebSocket test vectors, checked against the official client.

Usage:
    gen_noren.py SHOONYA_CHECKOUT [FLATTRADE_CHECKOUT] [--out FILE]
                 [--shoonya-commit SHA] [--flattrade-commit SHA]

Each checkout is a work tree of an official Noren Python client repository (Shoonya-Dev/ShoonyaApi-py,
flattrade/pythonAPI). The official module, NorenRestApiPy/NorenApi.py, is loaded unmodified from
the checkout (from NorenRestApiPy/ if present, else from the wheel under dist/), with its network
modules (websocket-client and requests) replaced by inert stand-ins, so nothing connects anywhere.

Messages from the server are built here independently, from the documented field lists, as JSON
text; each is handed to the client's own receive callback (the one it registers with
websocket.WebSocketApp as on_data), and whatever the client then hands the user's callbacks
(subscribe, order update, open, error) is recorded as `decoded`. Messages to the server are what
the client sends through its socket for connect, subscribe, unsubscribe and order subscription,
recorded as `text`. The keep-alive the client asks websocket-client for (ping interval, payload)
is recorded too. With a second checkout, every server message is also run through that client
and the two must agree, except for the connect acknowledgement, which differs per dialect and
is stored for both.

Standard library only. Writes JSON (a list of entries) to --out, or stdout.
"""
import argparse
import glob
import hashlib
import importlib
import json
import os
import subprocess
import sys
import threading
import types
import zipfile

USER = "FA12345"
TOKEN = "0f3c9a1e7b2d4c5a8e6f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d"


# ---------------------------------------------------------------- stand-ins for the network modules

class StubSocket:
    """Stands in for websocket.WebSocketApp: records what the client sends and how it runs."""

    instances = []

    def __init__(self, url, **callbacks):
        self.url = url
        self.callbacks = callbacks
        self.on_data = callbacks.get("on_data")
        self.on_open = callbacks.get("on_open")
        self.sent = []
        self.run_kwargs = None
        self._closed = threading.Event()
        self._ran = threading.Event()
        StubSocket.instances.append(self)

    def run_forever(self, **kwargs):
        self.run_kwargs = kwargs
        self._ran.set()
        self._closed.wait(5)

    def send(self, data, *args, **kwargs):
        self.sent.append(data)
        return len(data)

    def close(self, *args, **kwargs):
        self._closed.set()


def install_stubs():
    ws = types.ModuleType("websocket")
    ws.WebSocketApp = StubSocket
    sys.modules["websocket"] = ws
    req = types.ModuleType("requests")

    def refuse(*args, **kwargs):
        raise RuntimeError("network disabled in the vector generator")

    req.post = req.get = refuse
    sys.modules["requests"] = req


# ---------------------------------------------------------------- loading the official module

def git_blob(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def load_official(checkout, label, commit):
    """Returns (module, provenance) for the NorenApi module in this checkout."""
    checkout = os.path.abspath(checkout)
    source_dir = os.path.join(checkout, "NorenRestApiPy")
    provenance = {"label": label}
    if commit is None and os.path.isdir(os.path.join(checkout, ".git")):
        try:
            commit = subprocess.check_output(["git", "-C", checkout, "rev-parse", "HEAD"], text=True).strip()
        except (OSError, subprocess.CalledProcessError):
            commit = None
    if commit:
        provenance["commit"] = commit
    if os.path.isfile(os.path.join(source_dir, "NorenApi.py")):
        root = checkout
        with open(os.path.join(source_dir, "NorenApi.py"), "rb") as f:
            data = f.read()
        provenance["file"] = "NorenRestApiPy/NorenApi.py"
    else:
        wheels = sorted(glob.glob(os.path.join(checkout, "dist", "*.whl")))
        if not wheels:
            sys.exit(f"{label}: neither NorenRestApiPy/NorenApi.py nor dist/*.whl in the checkout")
        wheel = wheels[-1]
        root = wheel  # a wheel is a zip archive: importable as it is
        with open(wheel, "rb") as f:
            whl = f.read()
        with zipfile.ZipFile(wheel) as z:
            data = z.read("NorenRestApiPy/NorenApi.py")
        provenance["file"] = "dist/" + os.path.basename(wheel)
        provenance["blob"] = git_blob(whl)
        provenance["module"] = "NorenRestApiPy/NorenApi.py"
    provenance["module_sha256"] = hashlib.sha256(data).hexdigest()
    for name in [n for n in sys.modules if n == "NorenRestApiPy" or n.startswith("NorenRestApiPy.")]:
        del sys.modules[name]
    sys.path.insert(0, root)
    try:
        module = importlib.import_module("NorenRestApiPy.NorenApi")
    finally:
        sys.path.remove(root)
    return module, provenance


# ---------------------------------------------------------------- driving the client

class Harness:
    """One official client with a stub socket; records what reaches the user's callbacks."""

    def __init__(self, module, host, endpoint):
        self.events = []
        StubSocket.instances.clear()
        self.api = module.NorenApi(host=host, websocket=endpoint)
        self.module = module
        self.api.set_session(userid=USER, password="", usertoken=TOKEN)
        self.api.start_websocket(
            subscribe_callback=lambda m: self.events.append({"callback": "subscribe_callback", "arg": m}),
            order_update_callback=lambda m: self.events.append({"callback": "order_update_callback", "arg": m}),
            socket_open_callback=lambda: self.events.append({"callback": "socket_open_callback"}),
            socket_close_callback=lambda: self.events.append({"callback": "socket_close_callback"}),
            socket_error_callback=lambda e: self.events.append({"callback": "socket_error_callback", "arg": e}),
        )
        self.socket = StubSocket.instances[-1]
        self.socket._ran.wait(5)
        # The socket opens: the client's on_open sends the connect message.
        self.socket.on_open(self.socket)
        self.connect_text = self.socket.sent.pop(0)

    def receive(self, text):
        """Hands one text message to the client's receive callback, as websocket-client does."""
        self.events.clear()
        exception = None
        try:
            self.socket.on_data(self.socket, text, 1, True)
        except Exception as e:  # websocket-client would pass this to on_error
            exception = f"{type(e).__name__}: {e}"
        return list(self.events), exception

    def send_of(self, call):
        """The text the client sends for one call (subscribe, unsubscribe …)."""
        before = len(self.socket.sent)
        exception = None
        try:
            call(self.api, self.module)
        except Exception as e:
            exception = f"{type(e).__name__}: {e}"
        return self.socket.sent[before:], exception

    def close(self):
        self.api.close_websocket()


# ---------------------------------------------------------------- messages built independently

def depth_fields(bids, asks):
    """bq/bp/bo and sq/sp/so 1..5 from (price, quantity, orders) triples."""
    out = {}
    for side, levels in (("b", bids), ("s", asks)):
        for i, (price, quantity, orders) in enumerate(levels, start=1):
            out[f"{side}p{i}"] = price
            out[f"{side}q{i}"] = quantity
            out[f"{side}o{i}"] = orders
    return out


RELIANCE_TK = {
    "t": "tk", "e": "NSE", "tk": "2885", "ts": "RELIANCE-EQ", "pp": "2", "ls": "1", "ti": "0.05",
    "lp": "2950.55", "pc": "1.01", "v": "4817234", "o": "2925.00", "h": "2962.40", "l": "2918.10",
    "c": "2921.15", "ap": "2941.37", "ltt": "15:29:59", "ltq": "5", "tbq": "412345", "tsq": "598812",
    "bp1": "2950.50", "sp1": "2950.55", "bq1": "120", "sq1": "35", "uc": "3213.25", "lc": "2629.05",
    "ft": "1718186399",
}
NIFTY_TK = {
    "t": "tk", "e": "NSE", "tk": "26000", "ts": "Nifty 50", "pp": "2", "ls": "1", "ti": "0.05",
    "lp": "23264.85", "pc": "0.41", "o": "23209.30", "h": "23281.20", "l": "23170.35", "c": "23169.40",
    "ft": "1718186399",
}
FUT_TK = {
    "t": "tk", "e": "NFO", "tk": "35001", "ts": "NIFTY27JUN24F", "pp": "2", "ls": "25", "ti": "0.05",
    "lp": "23310.00", "pc": "0.38", "v": "4123450", "o": "23250.00", "h": "23335.00", "l": "23211.55",
    "c": "23222.10", "ap": "23280.42", "ltt": "15:29:58", "ltq": "50", "tbq": "1823475", "tsq": "1634200",
    "oi": "14023350", "poi": "13890025", "toi": "14231475",
    "bp1": "23309.45", "sp1": "23310.00", "bq1": "375", "sq1": "150", "uc": "25543.30", "lc": "20899.90",
    "ft": "1718186398",
}
USDINR_TK = {
    "t": "tk", "e": "CDS", "tk": "1153", "ts": "USDINR26JUN24F", "pp": "4", "ls": "1", "ti": "0.0025",
    "lp": "83.4525", "pc": "-0.02", "v": "1245678", "o": "83.4650", "h": "83.4700", "l": "83.4400",
    "c": "83.4700", "ap": "83.4561", "oi": "2345678", "poi": "2311002",
    "bp1": "83.4500", "sp1": "83.4525", "bq1": "1520", "sq1": "987", "ft": "1718186399",
}
SBIN_DK = dict(
    {
        "t": "dk", "e": "NSE", "tk": "3045", "ts": "SBIN-EQ", "pp": "2", "ls": "1", "ti": "0.05",
        "lp": "834.10", "pc": "0.86", "v": "12873410", "o": "828.00", "h": "836.45", "l": "826.70",
        "c": "826.95", "ap": "831.92", "ltt": "15:29:59", "ltq": "12", "tbq": "845120", "tsq": "1203344",
        "uc": "909.60", "lc": "744.30", "52h": "912.00", "52l": "555.25", "ft": "1718186399",
    },
    **depth_fields(
        [("834.05", "310", "7"), ("834.00", "1502", "19"), ("833.95", "402", "8"), ("833.90", "655", "11"), ("833.85", "120", "3")],
        [("834.10", "95", "2"), ("834.15", "410", "6"), ("834.20", "1290", "14"), ("834.25", "275", "5"), ("834.30", "780", "9")],
    ),
)
FUT_DK = dict(
    {
        "t": "dk", "e": "NFO", "tk": "35001", "ts": "NIFTY27JUN24F", "pp": "2", "ls": "25", "ti": "0.05",
        "lp": "23310.00", "pc": "0.38", "v": "4123450", "o": "23250.00", "h": "23335.00", "l": "23211.55",
        "c": "23222.10", "ap": "23280.42", "ltt": "15:29:58", "ltq": "50", "tbq": "1823475", "tsq": "1634200",
        "oi": "14023350", "poi": "13890025", "toi": "14231475", "uc": "25543.30", "lc": "20899.90", "ft": "1718186398",
    },
    **depth_fields(
        [("23309.45", "375", "3"), ("23309.00", "50", "1"), ("23308.55", "125", "2"), ("23308.00", "0", "0"), ("0.00", "0", "0")],
        [("23310.00", "150", "2"), ("23310.50", "75", "1"), ("23311.00", "300", "4"), ("0.00", "0", "0"), ("0.00", "0", "0")],
    ),
)
NIFTY_DK = {
    "t": "dk", "e": "NSE", "tk": "26000", "ts": "Nifty 50", "pp": "2", "ls": "1", "ti": "0.05",
    "lp": "23264.85", "pc": "0.41", "o": "23209.30", "h": "23281.20", "l": "23170.35", "c": "23169.40",
    "ft": "1718186399",
}

# (name, message, note). Order matters: partial updates follow the full state they change.
SERVER_MESSAGES = [
    ("ck_ok", {"t": "ck", "s": "OK", "uid": USER}, "connect acknowledgement (t:c dialect): the client calls socket_open_callback"),
    ("ck_not_ok", {"t": "ck", "s": "NOT_OK", "uid": USER, "emsg": "Session Expired :  Invalid Session Key"},
     "connect refused: the client calls socket_error_callback with the message; the text of emsg is illustrative"),
    ("ak_ok", {"t": "ak", "s": "OK", "uid": USER},
     "connect acknowledgement (t:a dialect, Flattrade and Shoonya's OAuth endpoint)"),
    ("ak_not_ok", {"t": "ak", "s": "NOT_OK", "uid": USER, "emsg": "Invalid Access Token"},
     "connect refused in the t:a dialect: no client version here reports it (only ck is checked for errors)"),
    ("tk_nse_equity_reliance", RELIANCE_TK, "touchline acknowledgement: the full state of an equity"),
    ("tf_nse_equity_reliance_ltp", {"t": "tf", "e": "NSE", "tk": "2885", "lp": "2950.60", "pc": "1.01", "ft": "1718186400"},
     "touchline update: only what changed"),
    ("tf_nse_equity_reliance_trade", {"t": "tf", "e": "NSE", "tk": "2885", "lp": "2950.75", "v": "4817334", "ltq": "100",
                                      "ap": "2941.38", "ltt": "15:30:00", "bq1": "80", "sp1": "2950.80", "ft": "1718186401"},
     "touchline update after a trade"),
    ("tk_nse_index_nifty", NIFTY_TK, "touchline acknowledgement for an index: no volume, no quotes, no depth"),
    ("tf_nse_index_nifty", {"t": "tf", "e": "NSE", "tk": "26000", "lp": "23266.10", "pc": "0.42", "ft": "1718186400"},
     "index update"),
    ("tk_nfo_future_nifty_oi", FUT_TK, "touchline acknowledgement for a derivative: oi, poi, toi"),
    ("tf_nfo_future_nifty_oi", {"t": "tf", "e": "NFO", "tk": "35001", "oi": "14025000", "ft": "1718186401"},
     "derivative update carrying only open interest"),
    ("tk_cds_usdinr", USDINR_TK, "currency: pp 4, prices with four decimals"),
    ("dk_nse_equity_sbin_5", SBIN_DK, "depth acknowledgement: five levels each side, circuits, 52-week range"),
    ("df_nse_equity_sbin_partial", {"t": "df", "e": "NSE", "tk": "3045", "lp": "834.15", "ltq": "40", "v": "12873450",
                                    "bq1": "280", "sp1": "834.15", "sq1": "410", "so1": "6", "sp2": "834.20", "sq2": "1290",
                                    "so2": "14", "ft": "1718186400"},
     "depth update: a level's fields arrive separately; the rest keep their last value"),
    ("dk_nfo_future_nifty_sparse", FUT_DK, "depth acknowledgement with empty levels (price 0.00)"),
    ("df_nfo_future_nifty_oi", {"t": "df", "e": "NFO", "tk": "35001", "oi": "14026100", "toi": "14234500", "tbq": "1823900"},
     "depth update without lp or ft"),
    ("dk_nse_index_nifty", NIFTY_DK, "depth acknowledgement for an index: no levels"),
    ("om_order_update", {"t": "om", "norenordno": "24061200000123", "uid": USER, "actid": USER, "exch": "NSE",
                         "tsym": "SBIN-EQ", "qty": "1", "prc": "834.10", "prd": "C", "status": "OPEN",
                         "reporttype": "New", "trantype": "B", "prctyp": "LMT", "ret": "DAY"},
     "order update: not market data; goes to order_update_callback"),
    ("ok_order_subscription", {"t": "ok"}, "order-update subscription acknowledgement: delivered to no callback"),
    ("h_heartbeat_reply", {"t": "h"}, "a heartbeat echo: delivered to no callback"),
    ("unknown_type", {"t": "zz", "e": "NSE", "tk": "2885", "lp": "1.00"}, "unknown t: delivered to no callback"),
    ("missing_t", {"e": "NSE", "tk": "2885", "lp": "2950.55"}, "no t: the client raises (KeyError)"),
]
RAW_SERVER_TEXTS = [
    ("not_json", "Invalid Message", "not JSON: the client raises"),
    ("json_array", "[1,2,3]", "JSON but not an object: the client raises"),
]

CLIENT_CALLS = [
    ("subscribe_touchline_one", lambda api, m: api.subscribe("NSE|2885"), "subscribe('NSE|2885')"),
    ("subscribe_touchline_list", lambda api, m: api.subscribe(["NSE|2885", "NSE|26000", "NFO|35001"]),
     "subscribe([...]): one message, k joined with #"),
    ("subscribe_depth", lambda api, m: api.subscribe(["NSE|3045", "NFO|35001"], feed_type=m.FeedType.SNAPQUOTE),
     "subscribe(..., feed_type=FeedType.SNAPQUOTE)"),
    ("subscribe_depth_string_d", lambda api, m: api.subscribe("NSE|3045", feed_type="d"),
     "feed_type='d' as the official example passes it: sent as t:'d' (str(feed_type))"),
    ("unsubscribe_touchline", lambda api, m: api.unsubscribe(["NSE|2885", "NSE|26000"]), "unsubscribe([...])"),
    ("unsubscribe_depth", lambda api, m: api.unsubscribe("NSE|3045", feed_type=m.FeedType.SNAPQUOTE),
     "unsubscribe(..., feed_type=FeedType.SNAPQUOTE)"),
    ("subscribe_orders", lambda api, m: api.subscribe_orders(), "subscribe_orders()"),
]


def compact(message):
    return json.dumps(message, separators=(",", ":"))


def entry(name, direction, text, **fields):
    out = {"name": "noren/" + name, "frame": "text", "direction": direction, "hex": text.encode().hex(), "text": text}
    out.update(fields)
    return out


def server_result(events, exception):
    result = {"delivered": [e["callback"] for e in events]}
    args = [e["arg"] for e in events if "arg" in e]
    if len(args) == 1:
        result["decoded"] = args[0]
    if exception:
        result["exception"] = exception
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shoonya", help="checkout of Shoonya-Dev/ShoonyaApi-py (or any Noren client)")
    parser.add_argument("flattrade", nargs="?", help="checkout of flattrade/pythonAPI")
    parser.add_argument("--shoonya-commit")
    parser.add_argument("--flattrade-commit")
    parser.add_argument("--out")
    args = parser.parse_args()

    install_stubs()
    clients = [("shoonya", args.shoonya, args.shoonya_commit, "https://api.shoonya.com/NorenWClientTP/", "wss://api.shoonya.com/NorenWSTP/")]
    if args.flattrade:
        clients.append(("flattrade", args.flattrade, args.flattrade_commit,
                        "https://piconnect.flattrade.in/PiConnectAPI/", "wss://piconnect.flattrade.in/PiConnectWSAPI/"))

    harnesses = {}
    provenance = {}
    for label, path, commit, host, endpoint in clients:
        module, prov = load_official(path, label, commit)
        harnesses[label] = Harness(module, host, endpoint)
        provenance[label] = prov
    primary = harnesses["shoonya"]

    entries = []
    # Connect messages, one per dialect, and the keep-alive each client asks for.
    for label, h in harnesses.items():
        entries.append(entry(f"{label}/connect", "client->server", h.connect_text, decoded=json.loads(h.connect_text),
                             input={"uid": USER, "susertoken": TOKEN, "url": h.socket.url},
                             keepalive={k: v for k, v in (h.socket.run_kwargs or {}).items()},
                             note=f"sent by the {label} client when the socket opens; keepalive is what it passes "
                                  "to websocket-client's run_forever (a WebSocket ping frame, not a text message)"))

    state = {}
    for name, message, note in SERVER_MESSAGES:
        text = compact(message)
        events, exception = primary.receive(text)
        result = server_result(events, exception)
        extra = {}
        for label, h in harnesses.items():
            if h is primary:
                continue
            other = server_result(*h.receive(text))
            if other != result:
                extra[f"{label}_client"] = other
        # The documented user-side merge (the official feed example): per exchange|token, dict.update.
        merged = None
        if message.get("t") in ("tk", "tf", "dk", "df"):
            key = message["e"] + "|" + message["tk"]
            fresh = message["t"] in ("tk", "dk")
            state[key] = dict(message) if fresh or key not in state else {**state[key], **message}
            merged = dict(state[key])
        fields = dict(result)
        fields["input"] = message
        if merged is not None:
            fields["merged"] = merged
        fields.update(extra)
        fields["note"] = note
        entries.append(entry(name, "server->client", text, **fields))

    for name, text, note in RAW_SERVER_TEXTS:
        result = server_result(*primary.receive(text))
        entries.append(entry(name, "server->client", text, **result, input=text, note=note))

    for name, call, note in CLIENT_CALLS:
        sent, exception = primary.send_of(call)
        for label, h in harnesses.items():
            if h is not primary and h.send_of(call) != (sent, exception):
                sys.exit(f"{label} client sends something else for {name}")
        fields = {"decoded": json.loads(sent[0]) if len(sent) == 1 else [json.loads(s) for s in sent], "note": note}
        if exception:
            fields["exception"] = exception
        entries.append(entry(name, "client->server", sent[0] if len(sent) == 1 else "\n".join(sent), **fields))

    for h in harnesses.values():
        h.close()

    self_check(entries)
    out = json.dumps(entries, indent=1, ensure_ascii=False) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(out)
        print(f"{len(entries)} entries -> {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(out)
    print(json.dumps(provenance, indent=1), file=sys.stderr)


def self_check(entries):
    """The official client hands market messages to subscribe_callback exactly as sent."""
    for e in entries:
        if e["direction"] != "server->client" or not isinstance(e.get("input"), dict):
            continue
        if e["input"].get("t") in ("tk", "tf", "dk", "df"):
            if e.get("delivered") != ["subscribe_callback"] or e.get("decoded") != e["input"]:
                sys.exit(f"{e['name']}: the official client did not deliver the message as built")


if __name__ == "__main__":
    main()
