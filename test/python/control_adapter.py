"""A minimal tickcast adapter, written from docs/control-protocol.md (version 2, ZeroMQ transport).

    control_adapter.py --control ENDPOINT --bus ENDPOINT --key-file FILE --instance NAME
                       --feed FEEDID --broker NAME [--brokers a,b|*] [--heartbeat-ms N] [--hosts a,b]

It announces itself on the gateway's control endpoint (a DEALER), answers `register`, heartbeats
and `subscribe` / `unsubscribe`, and publishes a tick every 100 ms for each stream it holds
upstream on the gateway's bus (a PUB that connects), topic `<feed>|EXCHANGE_SYMBOL_MODE`. Its
"upstream" is a fake market: every stream's LTP is the fixed PRICE below. It reports status
`live`, and on SIGTERM sends `bye` to every confirmed registration and exits 0.

stdout, one line each, flushed (for a test to read):
    ready                                    the first registration was confirmed by the gateway
    registered GATEWAY SESSION               a register was accepted (answered `registered`)
    subscribe EXCHANGE SYMBOL MODE DEPTH     a subscribe from a gateway
    unsubscribe EXCHANGE SYMBOL              an unsubscribe from a gateway
    bye GATEWAY                              a gateway said bye
    stopped                                  SIGTERM handled, byes sent
Diagnostics go to stderr. Needs only the standard library and pyzmq (Debian: python3-zmq).
"""
import argparse
import hashlib
import hmac
import json
import os
import random
import re
import secrets
import signal
import socket
import sys
import time

import zmq

PROTOCOL = 2
PRICE = 4321.25  # the LTP of every tick this adapter publishes
TICK_PERIOD = 0.1
MISSED_HEARTBEATS = 3
MAX_REGISTRATIONS = 1024
MAX_JSON_BYTES = 65536
MAX_INT = 2**53 - 1
HEX64 = re.compile(rb"[0-9a-f]{64}")
HEX64_TEXT = re.compile(r"[0-9a-f]{64}")
STATUSES = ("live", "reconnecting", "stale", "down")
TOPIC_MODE = {1: "LTP", 2: "QUOTE", 3: "DEPTH"}
DELIVERED_DEPTH = 5  # order-book levels this fake upstream has


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def say(*parts):
    print(*parts, flush=True)


# ── keys and frames ────────────────────────────────────────────────────────────────────────────


def read_instance_key(path):
    if not os.path.exists(path):
        sys.exit(f"control key file {path} does not exist: start the gateway first (it creates it)")
    with open(path, "r", encoding="utf-8") as f:
        text = f.read().strip()
    if not HEX64_TEXT.fullmatch(text):
        sys.exit(f"control key file {path} does not hold 64 lower-case hex digits")
    return bytes.fromhex(text)


def registration_keys(instance_key, gateway_nonce, adapter_nonce):
    def derive(direction):
        msg = f"tickcast control {direction} {gateway_nonce} {adapter_nonce}".encode("ascii")
        return hmac.new(instance_key, msg, hashlib.sha256).digest()

    return derive("to-adapter"), derive("to-gateway")


def make_frame(key, message):
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return hmac.new(key, body, hashlib.sha256).hexdigest().encode("ascii") + b" " + body


def verify(key, body, mac_hex):
    return hmac.compare_digest(hmac.new(key, body, hashlib.sha256).hexdigest().encode("ascii"), mac_hex)


def entry_hash(exchange, symbol, mode):
    text = f"{exchange}\u0000{symbol}\u0000{mode}".encode("utf-16-le")
    h = 0x811C9DC5
    for i in range(0, len(text), 2):
        h ^= text[i] | (text[i + 1] << 8)
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def digest(entries):
    entries = list(entries)
    return {"count": len(entries), "sum": sum(entry_hash(*e) for e in entries) & 0xFFFFFFFF}


# ── field validation (the "Messages" section) ──────────────────────────────────────────────────


class Malformed(Exception):
    pass


def utf16_len(s):
    return len(s.encode("utf-16-le")) // 2


def need_int(msg, field, minimum=0, optional=False):
    value = msg.get(field)
    if value is None and optional and field not in msg:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise Malformed(f"{field} is not an integer")
    if not minimum <= value <= MAX_INT:
        raise Malformed(f"{field} out of range")
    msg[field] = int(value)


def need_name(msg, field, limit, optional=False):
    value = msg.get(field)
    if optional and field not in msg:
        return
    if not isinstance(value, str) or not 1 <= utf16_len(value) <= limit:
        raise Malformed(f"{field} is not a name({limit})")


def need_text(msg, field, optional=False):
    value = msg.get(field)
    if optional and field not in msg:
        return
    if not isinstance(value, str) or utf16_len(value) > 2000:
        raise Malformed(f"{field} is not text")


def need_hex64(msg, field):
    value = msg.get(field)
    if not isinstance(value, str) or not HEX64_TEXT.fullmatch(value):
        raise Malformed(f"{field} is not hex64")


def validate(msg):
    """Checks the fields of a gateway → adapter message; raises Malformed. Returns the type."""
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise Malformed("not an object with a string type")
    t = msg["type"]
    if t == "register":
        need_int(msg, "protocol", 1)
        need_name(msg, "gateway", 128)
        need_int(msg, "session", 1)
        need_hex64(msg, "nonce")
        need_int(msg, "heartbeatMs", 1)
        need_int(msg, "pid", 1)
        need_name(msg, "host", 255)
    elif t == "refused":
        need_text(msg, "message")
        need_int(msg, "epoch", 0, optional=True)
        need_name(msg, "gateway", 128, optional=True)
        need_int(msg, "session", 0, optional=True)
    elif t in ("heartbeat", "subscribe", "unsubscribe", "bye"):
        need_name(msg, "gateway", 128)
        need_int(msg, "session", 1)
        need_int(msg, "seq", 1)
        if t == "heartbeat" and "digest" in msg:
            d = msg["digest"]
            if not isinstance(d, dict):
                raise Malformed("digest is not an object")
            need_int(d, "count", 0)
            need_int(d, "sum", 0)
            if d["sum"] > 0xFFFFFFFF:
                raise Malformed("digest.sum out of range")
        if t in ("subscribe", "unsubscribe"):
            need_int(msg, "id", 0)
            need_name(msg, "exchange", 256)
            need_name(msg, "symbol", 256)
        if t == "subscribe":
            need_int(msg, "mode", 1)
            if msg["mode"] not in (1, 2, 3):
                raise Malformed("mode is not 1, 2 or 3")
            need_int(msg, "depth", 0)
    elif t in ("announce", "registered", "reset", "reply", "status"):
        pass  # adapter → gateway types: valid JSON, but nothing an adapter acts on
    else:
        raise Malformed(f"unknown type {t!r}")
    return t


# ── the adapter ────────────────────────────────────────────────────────────────────────────────


class Registration:
    def __init__(self, gateway, session, gateway_nonce, heartbeat_ms, instance_key):
        self.gateway = gateway
        self.session = session
        self.gateway_nonce = gateway_nonce
        self.nonce = secrets.token_hex(32)
        self.to_adapter, self.to_gateway = registration_keys(instance_key, gateway_nonce, self.nonce)
        self.heartbeat_ms = heartbeat_ms
        self.last_seq_in = 0
        self.seq_out = 0
        self.confirmed = False
        self.last_heard = time.monotonic()
        self.registered_frame = b""


class Adapter:
    def __init__(self, args):
        self.args = args
        self.instance_key = read_instance_key(args.key_file)
        self.epoch = random.randrange(1, 2**47)
        self.heartbeat_ms = args.heartbeat_ms
        self.status = "live"
        self.registrations = {}  # gateway id → Registration
        self.wants = {}  # gateway id → {(exchange, symbol): {"mode", "depth", "pending"}}
        self.upstream = {}  # (exchange, symbol) → {"mode", "depth"}
        self.ready_said = False
        self.stopping = False
        self.logged = {}  # kind → last time logged

        self.ctx = zmq.Context()
        self.control = self.ctx.socket(zmq.DEALER)
        self.control.setsockopt(zmq.ROUTING_ID, b"tickcast-" + secrets.token_hex(8).encode("ascii"))
        self.control.setsockopt(zmq.IMMEDIATE, 1)
        self.control.setsockopt(zmq.SNDTIMEO, 0)
        self.control.setsockopt(zmq.SNDHWM, 10_000)
        self.control.setsockopt(zmq.MAXMSGSIZE, 1024 * 1024)
        self.control.setsockopt(zmq.LINGER, 0)
        self.control.connect(args.control)

        self.bus = self.ctx.socket(zmq.PUB)
        self.bus.setsockopt(zmq.LINGER, 0)
        self.bus.connect(args.bus)

    # identity fields shared by announce and registered
    def identity(self):
        brokers = self.args.brokers
        return {
            "protocol": PROTOCOL,
            "feed": self.args.feed,
            "broker": self.args.broker,
            "brokers": brokers if brokers == "*" else [b for b in brokers.split(",") if b],
            "instance": self.args.instance,
            "pid": os.getpid(),
            "host": (socket.gethostname() or "localhost")[:255],
            "epoch": self.epoch,
            "heartbeatMs": self.heartbeat_ms,
            **({"hosts": [b for b in self.args.hosts.split(",") if b]} if self.args.hosts is not None else {}),
        }

    def log_once(self, kind, text):
        now = time.monotonic()
        if now - self.logged.get(kind, -1e9) >= 10:
            self.logged[kind] = now
            log(text)

    def send(self, frame):
        try:
            self.control.send(frame)
        except zmq.Again:
            pass  # no gateway connected: dropped, as the doc says

    def send_session(self, reg, message):
        reg.seq_out += 1
        message = {"type": message.pop("type"), "gateway": reg.gateway, "session": reg.session, "seq": reg.seq_out, **message}
        self.send(make_frame(reg.to_gateway, message))

    def announce(self):
        self.send(make_frame(self.instance_key, {"type": "announce", **self.identity()}))

    # ── incoming frames ──

    def on_frame(self, data):
        if data[:1] == b"{":
            return  # version 1: nothing an adapter answers
        if len(data) < 66 or data[64:65] != b" " or not HEX64.fullmatch(data[:64]):
            return self.log_once("malformed", "malformed control frame dropped")
        mac, body = data[:64], data[65:]
        if len(body) > MAX_JSON_BYTES:
            return self.log_once("malformed", "oversized control frame dropped")
        try:
            msg = json.loads(body.decode("utf-8"))
            t = validate(msg)
        except (ValueError, OverflowError, Malformed) as e:
            return self.log_once("malformed", f"malformed control frame dropped: {e}")

        if t in ("register", "refused"):
            if not verify(self.instance_key, body, mac):
                return self.log_once("unauthenticated", f"unauthenticated {t} dropped")
            return self.on_register(msg) if t == "register" else self.on_refused(msg)
        if t not in ("heartbeat", "subscribe", "unsubscribe", "bye"):
            return  # an adapter → gateway message: not for us

        reg = self.registrations.get(msg["gateway"])
        if reg is None or reg.session != msg["session"]:
            if t != "bye":
                self.send(make_frame(self.instance_key, {
                    "type": "reset", "gateway": msg["gateway"], "session": msg["session"],
                    "message": f'Feed "{self.args.feed}" does not know this gateway\'s registration; register again',
                }))
            return
        if not verify(reg.to_adapter, body, mac):
            return self.log_once("unauthenticated", f"unauthenticated {t} dropped")
        if msg["seq"] <= reg.last_seq_in:
            return  # a replay or a duplicate
        reg.last_seq_in = msg["seq"]
        reg.last_heard = time.monotonic()
        if not reg.confirmed:
            reg.confirmed = True
            for entry in self.wants.get(reg.gateway, {}).values():
                entry["pending"] = True
            log(f"registration of gateway {reg.gateway} session {reg.session} confirmed")
            if not self.ready_said:
                self.ready_said = True
                say("ready")
        getattr(self, "on_" + t)(reg, msg)

    def on_register(self, msg):
        if msg["protocol"] != PROTOCOL:
            self.send(make_frame(self.instance_key, {
                "type": "refused", "gateway": msg["gateway"], "session": msg["session"],
                "message": f"control protocol {msg['protocol']} is not supported: this adapter speaks {PROTOCOL}",
            }))
            return
        held = self.registrations.get(msg["gateway"])
        if held is not None:
            if held.session == msg["session"] and held.gateway_nonce == msg["nonce"]:
                self.send(held.registered_frame)  # our answer may have been lost
                return
            if msg["session"] <= held.session:
                return  # a replay of an old register
        elif len(self.registrations) >= MAX_REGISTRATIONS:
            return
        reg = Registration(msg["gateway"], msg["session"], msg["nonce"], msg["heartbeatMs"], self.instance_key)
        reg.registered_frame = make_frame(self.instance_key, {
            "type": "registered", **self.identity(),
            "gateway": reg.gateway, "session": reg.session,
            "gatewayNonce": reg.gateway_nonce, "nonce": reg.nonce, "status": self.status,
        })
        self.registrations[reg.gateway] = reg
        self.wants.setdefault(reg.gateway, {})
        self.send(reg.registered_frame)
        log(f"registered gateway {reg.gateway} session {reg.session}")
        say("registered", reg.gateway, reg.session)

    def on_refused(self, msg):
        if msg.get("epoch") != self.epoch:
            return
        log(f"refused by the gateway: {msg['message']}")
        self.stop(1)

    def on_heartbeat(self, reg, msg):
        resync = False
        if "digest" in msg:
            mine = self.wants.get(reg.gateway, {})
            for stream in [s for s, e in mine.items() if e["pending"]]:
                del mine[stream]
                self.bring_in_line(stream)
            d = digest((ex, sym, e["mode"]) for (ex, sym), e in mine.items())
            resync = d["count"] != msg["digest"]["count"] or d["sum"] != msg["digest"]["sum"]
        self.send_session(reg, {"type": "heartbeat", "resync": resync, "status": self.status})

    def on_subscribe(self, reg, msg):
        stream = (msg["exchange"], msg["symbol"])
        say("subscribe", msg["exchange"], msg["symbol"], msg["mode"], msg["depth"])
        self.wants.setdefault(reg.gateway, {})[stream] = {"mode": msg["mode"], "depth": msg["depth"], "pending": False}
        delivered = self.bring_in_line(stream)
        reply = {"type": "reply", "id": msg["id"], "ok": True}
        if msg["mode"] == 3 and delivered is not None:
            reply["depth"] = delivered
        self.send_session(reg, reply)

    def on_unsubscribe(self, reg, msg):
        stream = (msg["exchange"], msg["symbol"])
        say("unsubscribe", msg["exchange"], msg["symbol"])
        self.wants.get(reg.gateway, {}).pop(stream, None)
        self.bring_in_line(stream)
        self.send_session(reg, {"type": "reply", "id": msg["id"], "ok": True})

    def on_bye(self, reg, msg):
        say("bye", reg.gateway)
        self.drop(reg.gateway)

    def drop(self, gateway):
        self.registrations.pop(gateway, None)
        released = self.wants.pop(gateway, {})
        for stream in released:
            self.bring_in_line(stream)

    # ── the fake upstream ──

    def bring_in_line(self, stream):
        """Subscribes the fake upstream to the union of every gateway's want; returns its depth."""
        entries = [w[stream] for w in self.wants.values() if stream in w]
        if not entries:
            if self.upstream.pop(stream, None) is not None:
                log(f"upstream unsubscribed {stream[0]}:{stream[1]}")
            return None
        mode = max(e["mode"] for e in entries)
        depth = max(e["depth"] for e in entries)
        held = self.upstream.get(stream)
        if held is None or held["mode"] != mode or held["depth"] < depth:
            self.upstream[stream] = {"mode": mode, "depth": depth}
            log(f"upstream subscribed {stream[0]}:{stream[1]} mode {mode}")
        return DELIVERED_DEPTH

    def publish_ticks(self):
        now_ms = int(time.time() * 1000)
        for (exchange, symbol), held in self.upstream.items():
            mode = held["mode"]
            payload = {"symbol": symbol, "exchange": exchange, "mode": mode, "ltp": PRICE, "ltt": now_ms, "timestamp": now_ms}
            if mode >= 2:
                payload.update({"open": PRICE, "high": PRICE, "low": PRICE, "close": PRICE, "volume": 100})
            if mode == 3:
                payload["depth"] = {
                    "buy": [{"price": PRICE - 0.05 * (i + 1), "quantity": 10, "orders": 1} for i in range(DELIVERED_DEPTH)],
                    "sell": [{"price": PRICE + 0.05 * (i + 1), "quantity": 10, "orders": 1} for i in range(DELIVERED_DEPTH)],
                }
            topic = f"{self.args.feed}|{exchange}_{symbol}_{TOPIC_MODE[mode]}"
            try:
                self.bus.send_multipart([topic.encode("utf-8"), json.dumps(payload).encode("utf-8")], zmq.NOBLOCK)
            except zmq.Again:
                pass

    # ── timers, loop, stop ──

    def check_silence(self):
        now = time.monotonic()
        for reg in list(self.registrations.values()):
            limit = MISSED_HEARTBEATS * max(reg.heartbeat_ms, self.heartbeat_ms) / 1000
            if now - reg.last_heard > limit:
                log(f"gateway {reg.gateway} silent for {now - reg.last_heard:.1f} s: dropped")
                self.drop(reg.gateway)

    def run(self):
        poller = zmq.Poller()
        poller.register(self.control, zmq.POLLIN)
        period = self.heartbeat_ms / 1000
        next_announce = time.monotonic()
        next_tick = time.monotonic()
        while not self.stopping:
            now = time.monotonic()
            if now >= next_announce:
                self.announce()
                self.check_silence()
                next_announce = now + period
            if now >= next_tick:
                self.publish_ticks()
                next_tick = now + TICK_PERIOD
            timeout = max(0, min(next_announce, next_tick) - time.monotonic())
            events = dict(poller.poll(timeout * 1000))
            if self.control in events:
                while not self.stopping:
                    try:
                        parts = self.control.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if len(parts) == 1:
                        self.on_frame(parts[0])
        self.stop(0)

    def stop(self, code):
        for reg in list(self.registrations.values()):
            if reg.confirmed:
                self.send_session(reg, {"type": "bye"})
        time.sleep(0.05)  # let the byes leave before the socket closes
        self.control.close(0)
        self.bus.close(0)
        self.ctx.term()
        if code == 0:
            say("stopped")
        sys.exit(code)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--control", required=True)
    parser.add_argument("--bus", required=True)
    parser.add_argument("--key-file", required=True)
    parser.add_argument("--instance", required=True)
    parser.add_argument("--feed", required=True)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--brokers", default=None, help="comma-separated broker names, or *")
    parser.add_argument("--heartbeat-ms", type=int, default=1000)
    parser.add_argument("--hosts", default=None, help="announce as a feed host of these brokers (comma-separated)")
    args = parser.parse_args()
    if args.brokers is None:
        args.brokers = args.broker
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", args.feed):
        parser.error("--feed must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    if args.heartbeat_ms < 1:
        parser.error("--heartbeat-ms must be at least 1")

    adapter = Adapter(args)

    def on_sigterm(signum, frame):
        adapter.stopping = True

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, on_sigterm)
    log(f"adapter for feed {args.feed} (broker {args.broker}) announcing to {args.control}, epoch {adapter.epoch}")
    adapter.run()


if __name__ == "__main__":
    main()
