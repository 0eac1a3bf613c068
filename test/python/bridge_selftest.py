#!/usr/bin/env python3
"""Exercises bridge/openalgo_bridge.py end to end by acting as a tickcast gateway.

    python3 test/python/bridge_selftest.py [-k NAME] [-v]

It copies the fake OpenAlgo tree (test/python/openalgo_tree) into a temporary directory, writes
its .env and an OpenAlgo `auth` table (SQLite, tokens Fernet-encrypted as OpenAlgo does), binds a
ROUTER (control) and a SUB (bus), starts the bridge, registers with it, and checks opens,
subscribes, replies, statuses and tagged ticks, scenario by scenario (each with a fresh bridge).
Needs pyzmq and cryptography (Debian: python3-zmq, python3-cryptography). Exit status 0 when every
scenario passes. Run by test/integration/openalgo-bridge-selftest.test.ts, in both pooling modes.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import zmq
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BRIDGE = os.path.join(ROOT, "bridge", "openalgo_bridge.py")
TREE = os.path.join(HERE, "openalgo_tree")
PEPPER = "a" * 64
VERBOSE = False
POOLING = True


def entry_hash(*parts):
    text = "\u0000".join(str(p) for p in parts).encode("utf-16-le")
    h = 0x811C9DC5
    for i in range(0, len(text), 2):
        h ^= text[i] | (text[i + 1] << 8)
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def frame(key, message):
    body = json.dumps(message, separators=(",", ":")).encode("utf-8")
    return hmac.new(key, body, hashlib.sha256).hexdigest().encode("ascii") + b" " + body


def fernet():
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=b"openalgo_static_salt", iterations=100000)
    return Fernet(base64.urlsafe_b64encode(kdf.derive(PEPPER.encode())))


class Failed(AssertionError):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


# ── the world: an OpenAlgo directory, a key, a gateway, a bridge ─────────────────────────────────


class World:
    def __init__(self, env_extra=None, bridge_args=()):
        self.dir = tempfile.mkdtemp(prefix="bridge-selftest-")
        self.oa = os.path.join(self.dir, "openalgo")
        shutil.copytree(TREE, self.oa, ignore=shutil.ignore_patterns("__pycache__"))
        os.makedirs(os.path.join(self.oa, "db"))
        with open(os.path.join(self.oa, ".env"), "w") as f:
            f.write(f"# OpenAlgo settings\nAPI_KEY_PEPPER = '{PEPPER}'\nexport DATABASE_URL=\"sqlite:///db/openalgo.db\"\n"
                    "FAKE_TICK_MS=50\nZMQ_PORT=5555   # overridden by the bridge\n")
        self.db = os.path.join(self.oa, "db", "openalgo.db")
        db = sqlite3.connect(self.db)
        db.execute("CREATE TABLE auth (id INTEGER PRIMARY KEY, name VARCHAR(255) NOT NULL UNIQUE, auth TEXT NOT NULL,"
                   " feed_token TEXT, broker VARCHAR(20) NOT NULL, user_id VARCHAR(255), is_revoked BOOLEAN)")
        db.commit()
        db.close()
        self.behaviour_path = os.path.join(self.dir, "behaviour.json")
        self.calls_path = os.path.join(self.dir, "calls.jsonl")
        self.key_path = os.path.join(self.dir, "control.key")
        self.key = secrets.token_bytes(32)
        with open(self.key_path, "w") as f:
            f.write(self.key.hex() + "\n")
        self.env_extra = env_extra or {}
        self.bridge_args = list(bridge_args)
        self.gw = Gateway(self.key)
        self.proc = None
        self.stderr_lines = []

    def auth(self, user, broker, token, revoked=False):
        db = sqlite3.connect(self.db)
        db.execute("INSERT INTO auth (name, auth, broker, is_revoked) VALUES (?, ?, ?, ?)"
                   " ON CONFLICT (name) DO UPDATE SET auth = excluded.auth, broker = excluded.broker, is_revoked = excluded.is_revoked",
                   (user, fernet().encrypt(token.encode()).decode() if token else "", broker, revoked))
        db.commit()
        db.close()

    def behave(self, spec):
        tmp = self.behaviour_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(spec, f)
        os.replace(tmp, self.behaviour_path)

    def calls(self, **match):
        try:
            with open(self.calls_path) as f:
                rows = [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []
        return [r for r in rows if all(r.get(k) == v for k, v in match.items())]

    def start(self, extra_args=(), expect_ready=True):
        env = dict(os.environ)
        env.update({"FAKE_OPENALGO_BEHAVIOUR": self.behaviour_path, "FAKE_OPENALGO_CALLS": self.calls_path})
        env.update(self.env_extra)
        args = [sys.executable, BRIDGE, "--openalgo-dir", self.oa, "--control", self.gw.control_endpoint,
                "--bus", self.gw.bus_endpoint, "--key-file", self.key_path, "--instance", "selftest",
                "--heartbeat-ms", "200", "--open-wait-ms", "1500", "--call-timeout-ms", "1500",
                "--stale-after-ms", "1000", "--retry-min-ms", "500", "--retry-max-ms", "2000",
                "--tick-period-check-ms", "200", *self.bridge_args, *extra_args]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        self.stdout_lines = []

        def reader(stream, sink, echo):
            for line in stream:
                sink.append(line.rstrip("\n"))
                if echo:
                    sys.stderr.write("    | " + line)

        threading.Thread(target=reader, args=(self.proc.stderr, self.stderr_lines, VERBOSE), daemon=True).start()
        threading.Thread(target=reader, args=(self.proc.stdout, self.stdout_lines, False), daemon=True).start()
        if expect_ready:
            self.gw.wait(lambda: self.gw.registered, 5, "the bridge registered")
            self.gw.wait(lambda: "ready" in self.stdout_lines, 5, "the bridge printed ready")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def close(self):
        try:
            if self.proc and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        finally:
            self.gw.close()
            shutil.rmtree(self.dir, ignore_errors=True)


class Gateway:
    """Just enough of a tickcast gateway: registers with the host, commands it, reads the bus."""

    def __init__(self, key):
        self.key = key
        self.ctx = zmq.Context()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self.router.bind("tcp://127.0.0.1:*")
        self.control_endpoint = self.router.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.sub.bind("tcp://127.0.0.1:*")
        self.bus_endpoint = self.sub.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.gateway = "gw-selftest"
        self.session = 0
        self.reset_state()
        self.announces = []
        self.ticks = []
        self.frames_in = []
        self.silent = False  # stop heartbeating (to be dropped as silent)

    def reset_state(self):
        self.peer = None
        self.registered = False
        self.epoch = None
        self.to_adapter = self.to_gateway = None
        self.seq_out = 0
        self.last_seq_in = 0
        self.inflight = {}
        self.replies = {}
        self.statuses = []
        self.held = set()
        self.next_id = 1
        self.next_hb = 0
        self.byes = 0
        self.resyncs = 0
        self.nonce = None

    def close(self):
        self.router.close(0)
        self.sub.close(0)
        self.ctx.term()

    def send_raw(self, data):
        self.router.send_multipart([self.peer, data])

    def send_session(self, message):
        self.seq_out += 1
        body = {"type": message.pop("type"), "gateway": self.gateway, "session": self.session, "seq": self.seq_out}
        body.update(message)
        self.send_raw(frame(self.to_adapter, body))

    def register(self):
        self.session += 1
        self.nonce = secrets.token_hex(32)
        self.registered = False
        self.send_raw(frame(self.key, {"type": "register", "protocol": 2, "gateway": self.gateway, "session": self.session,
                                       "nonce": self.nonce, "heartbeatMs": 200, "pid": os.getpid(), "host": "selftest"}))

    def command(self, message):
        cid = self.next_id
        self.next_id += 1
        message["id"] = cid
        self.inflight[cid] = (time.monotonic(), dict(message))
        self.send_session(message)
        return cid

    def pump(self, timeout=0.05):
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.sub, zmq.POLLIN)
        events = dict(poller.poll(timeout * 1000))
        if self.router in events:
            while True:
                try:
                    ident, data = self.router.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                except ValueError:
                    continue
                self.on_frame(ident, data)
        if self.sub in events:
            while True:
                try:
                    topic, payload = self.sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self.ticks.append((topic.decode(), json.loads(payload)))
        now = time.monotonic()
        for cid, (sent, _) in list(self.inflight.items()):
            if now - sent > 5:
                del self.inflight[cid]
        if self.registered and not self.silent and now >= self.next_hb:
            self.next_hb = now + 0.2
            hb = {"type": "heartbeat"}
            if not self.inflight:
                hb["digest"] = {"count": len(self.held), "sum": sum(entry_hash(*e) for e in self.held) & 0xFFFFFFFF}
            self.send_session(hb)

    def on_frame(self, ident, data):
        mac, body = data[:64], data[65:]
        msg = json.loads(body)
        self.frames_in.append(msg)
        t = msg["type"]
        if t == "announce":
            check(hmac.compare_digest(hmac.new(self.key, body, hashlib.sha256).hexdigest().encode(), mac), "announce MAC")
            self.announces.append(msg)
            if self.peer != ident or self.epoch != msg["epoch"]:
                self.reset_state()
                self.peer, self.epoch = ident, msg["epoch"]
                self.register()
            elif not self.registered:
                self.register()
            return
        if t == "registered":
            if msg["gatewayNonce"] != self.nonce or msg["session"] != self.session:
                return
            def derive(direction):
                return hmac.new(self.key, f"tickcast control {direction} {self.nonce} {msg['nonce']}".encode(), hashlib.sha256).digest()
            self.to_adapter, self.to_gateway = derive("to-adapter"), derive("to-gateway")
            self.seq_out = self.last_seq_in = 0
            self.held = set()
            self.inflight = {}
            self.registered = True
            self.registered_msg = msg
            self.send_session({"type": "heartbeat"})  # confirms the registration
            # As a gateway does, the scenario's replay goes out before the first digest: a digest
            # sent before it would end the replay with nothing replayed.
            self.next_hb = time.monotonic() + 0.5
            return
        if t == "reset":
            return
        if t == "refused":
            return
        check(hmac.compare_digest(hmac.new(self.to_gateway, body, hashlib.sha256).hexdigest().encode(), mac), f"{t} MAC")
        check(msg["seq"] > self.last_seq_in, "seq increases")
        self.last_seq_in = msg["seq"]
        if t == "reply":
            sent = self.inflight.pop(msg["id"], None)
            self.replies[msg["id"]] = msg
            if sent and msg["ok"] and sent[1]["type"] == "subscribe":
                c = sent[1]
                self.held = {e for e in self.held if e[:3] != (c["feed"], c["exchange"], c["symbol"])}
                self.held.add((c["feed"], c["exchange"], c["symbol"], c["mode"]))
        elif t == "status":
            self.statuses.append((msg.get("feed"), msg["status"], msg.get("message", "")))
        elif t == "heartbeat":
            if msg["resync"]:
                self.resyncs += 1
        elif t == "bye":
            self.byes += 1
            self.registered = False

    # helpers

    def idle(self, seconds):
        """Keeps heartbeating (and reading) for a while."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.pump()

    def wait(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump()
            if pred():
                return
        raise Failed(f"timed out waiting for: {what}")

    def call(self, message, timeout=6):
        cid = self.command(message)
        self.wait(lambda: cid in self.replies, timeout, f"reply to {message}")
        return self.replies[cid]

    def open(self, feed, broker, user):
        return self.call({"type": "open", "feed": feed, "broker": broker, "user": user})

    def subscribe(self, feed, exchange, symbol, mode, depth=5):
        return self.call({"type": "subscribe", "feed": feed, "exchange": exchange, "symbol": symbol, "mode": mode, "depth": depth})

    def unsubscribe(self, feed, exchange, symbol):
        self.held = {e for e in self.held if e[:3] != (feed, exchange, symbol)}
        return self.call({"type": "unsubscribe", "feed": feed, "exchange": exchange, "symbol": symbol})

    def status_of(self, feed):
        for f, s, m in reversed(self.statuses):
            if f == feed:
                return s, m
        return None, None

    def wait_status(self, feed, status, timeout=8, contains=""):
        self.wait(lambda: self.status_of(feed)[0] == status and contains in (self.status_of(feed)[1] or ""),
                  timeout, f"{feed} {status} {contains!r} (last: {self.status_of(feed)})")
        return self.status_of(feed)

    def ticks_of(self, topic_prefix, since=0):
        return [d for t, d in self.ticks[since:] if t.startswith(topic_prefix)]

    def wait_ticks(self, topic_prefix, n=3, timeout=5):
        start = len(self.ticks)
        self.wait(lambda: len(self.ticks_of(topic_prefix, start)) >= n, timeout, f"{n} ticks on {topic_prefix}")
        return self.ticks_of(topic_prefix, start)


# ── scenarios ───────────────────────────────────────────────────────────────────────────────────


def s_announce_and_two_users(w):
    w.auth("alice", "dhan", "tokALICE-1234")
    w.auth("bob", "fyers", "tokBOB-5678")
    w.start()
    g = w.gw
    a = g.announces[-1]
    check(a["feed"] == "openalgo" and a["broker"] == "openalgo" and a["brokers"] == [], f"announce identity {a}")
    check(a["hosts"] == ["dhan", "fyers"], f"hosts {a['hosts']}")
    check(g.registered_msg["hosts"] == ["dhan", "fyers"], "registered carries hosts")
    check(g.open("dhan.alice", "dhan", "alice")["ok"], "open alice")
    check(g.open("fyers.bob", "fyers", "bob")["ok"], "open bob")
    g.wait_status("dhan.alice", "live")
    g.wait_status("fyers.bob", "live")
    r = g.subscribe("dhan.alice", "NSE", "SBIN", 1)
    check(r["ok"] and r.get("depth") == 5, f"subscribe alice {r}")
    r = g.subscribe("fyers.bob", "NSE", "SBIN", 2)
    check(r["ok"], f"subscribe bob {r}")
    ta = g.wait_ticks("dhan.alice|NSE_SBIN_LTP")
    tb = g.wait_ticks("fyers.bob|NSE_SBIN_QUOTE")
    check(all(t["fake_user"] == "alice" and t["fake_broker"] == "dhan" and t["fake_token"] == "tokALICE" for t in ta), "alice's ticks")
    check(all(t["fake_user"] == "bob" and t["fake_token"] == "tokBOB-5" for t in tb), "bob's ticks")
    check(not any(t.startswith("dhan.alice|") and d["fake_user"] != "alice" for t, d in g.ticks), "no cross-tagging")
    check(all("|" in t for t, _ in g.ticks), "every tick is tagged")
    # a second open of the same feed: ok; a conflicting one: refused
    check(g.open("dhan.alice", "dhan", "alice")["ok"], "reopen same")
    r = g.open("dhan.alice", "dhan", "carol")
    check(not r["ok"] and "alice" in r["message"], f"conflicting open {r}")
    r = g.open("zerodha.x", "zerodha", "x")
    check(not r["ok"], f"unknown broker {r}")
    r = g.subscribe("dhan.nobody", "NSE", "SBIN", 1)
    check(not r["ok"] and "not open" in r["message"], f"subscribe on unopened feed {r}")


def s_mode_policy(w):
    w.auth("alice", "dhan", "tokALICE-1234")
    w.start()
    g = w.gw
    g.open("dhan.alice", "dhan", "alice")
    g.wait_status("dhan.alice", "live")
    check(g.subscribe("dhan.alice", "NSE", "INFY", 1)["ok"], "ltp")
    check(g.subscribe("dhan.alice", "NSE", "INFY", 3, 20)["ok"], "depth")
    r = g.subscribe("dhan.alice", "NSE", "INFY", 2)
    check(r["ok"], "quote (a downgrade: no adapter call)")
    ticks = g.wait_ticks("dhan.alice|NSE_INFY_DEPTH")
    check(len(ticks[-1]["depth"]["buy"]) == 20, "20 levels")
    r = g.subscribe("dhan.alice", "NSE", "INFY", 3, 20)
    check(r["ok"] and r.get("depth") == 20, f"held mode answered from what is held {r}")
    check(g.unsubscribe("dhan.alice", "NSE", "INFY")["ok"], "unsubscribe")
    g.idle(0.3)
    subs = [(c["mode"], c["depth"]) for c in w.calls(broker="dhan", call="subscribe", symbol="INFY")]
    unsubs = [c["mode"] for c in w.calls(broker="dhan", call="unsubscribe", symbol="INFY")]
    check(subs == [(1, 5), (3, 20)], f"adapter subscribes {subs}")
    # through OpenAlgo's pool mode 1 is only tracked (no broker call); without it, each held mode, lowest first
    check(unsubs == ([3] if POOLING else [1, 3]), f"adapter unsubscribes {unsubs}")
    n = len(g.ticks)
    g.idle(0.4)
    check(not g.ticks_of("dhan.alice|NSE_INFY", n + 2), "no ticks after unsubscribe")
    # unknown symbol
    w.behave({"dhan": {"unknown_symbols": ["NOSUCH"]}})
    r = g.subscribe("dhan.alice", "NSE", "NOSUCH", 1)
    check(not r["ok"] and r["message"] == "Symbol NOSUCH not found for exchange NSE", f"unknown symbol {r}")
    # digest still agrees (the failed want is not kept)
    g.wait(lambda: False if g.inflight else True, 2, "no commands in flight")
    g.idle(0.6)
    check(g.resyncs == 0, "no resync")


def s_no_token_then_token(w):
    w.start()
    g = w.gw
    g.open("dhan.alice", "dhan", "alice")
    s, m = g.wait_status("dhan.alice", "down")
    check("dhan: initialize failed: No authentication token found for user alice; retrying in 0.5 s" == m, f"down message {m!r}")
    r = g.subscribe("dhan.alice", "NSE", "SBIN", 1)
    check(not r["ok"] and "No authentication token" in r["message"], f"subscribe on a down feed {r}")
    s, m = g.wait_status("dhan.alice", "down", contains="retrying in 1 s")
    w.auth("alice", "dhan", "tokALICE-1234")
    g.wait_status("dhan.alice", "live", timeout=5)
    check(g.subscribe("dhan.alice", "NSE", "SBIN", 1)["ok"], "subscribe once live")


def behaviour_case(call, how):
    def scenario(w):
        w.auth("alice", "dhan", "tokALICE-1234")
        w.auth("bob", "fyers", "tokBOB-5678")
        w.behave({"dhan:alice": {call: how}})
        w.start()
        g = w.gw
        g.open("fyers.bob", "fyers", "bob")
        g.wait_status("fyers.bob", "live")
        check(g.subscribe("fyers.bob", "NSE", "TCS", 1)["ok"], "bob subscribes")
        g.open("dhan.alice", "dhan", "alice")
        if call == "subscribe":
            g.wait_status("dhan.alice", "live")
            t0 = time.monotonic()
            cid = g.command({"type": "subscribe", "feed": "dhan.alice", "exchange": "NSE", "symbol": "SBIN", "mode": 1, "depth": 5})
            if how == "hang":
                s, m = g.wait_status("dhan.alice", "down", timeout=5)
                check("subscribe() did not return within 1.5 s" in m, f"hang message {m!r}")
            else:
                g.wait(lambda: cid in g.replies, 5, "subscribe reply")
                r = g.replies[cid]
                check(not r["ok"], f"failed subscribe {r}")
                if how == "raise":
                    expect = "fake dhan subscribe raised" if POOLING else "dhan adapter raised RuntimeError: fake dhan subscribe raised"
                    check(r["message"] == expect, r["message"])
                else:
                    check(r["message"] == "fake dhan subscribe error", r["message"])
        else:
            s, m = g.wait_status("dhan.alice", "down", timeout=5)
            expect = {
                "error": f"dhan: {call} failed: fake dhan {call} error; retrying in 0.5 s",
                # OpenAlgo's pool turns a raise into {"success": False, "error": str(e)}
                "raise": (f"dhan: {call} failed: fake dhan {call} raised; retrying in 0.5 s" if POOLING else
                          f"dhan: {call}() raised RuntimeError: fake dhan {call} raised; retrying in 0.5 s"),
                "hang": f"dhan: {call}() did not return within 1.5 s; retrying in 0.5 s",
            }[how]
            check(m == expect, f"down message {m!r}, expected {expect!r}")
        # the other user's feed, the control loop and the heartbeats are untouched
        g.wait_ticks("fyers.bob|NSE_TCS_LTP", 5)
        check(g.registered, "still registered")
        check(g.status_of("fyers.bob")[0] == "live", "bob still live")
        # recovers when the behaviour is normal again (the retry uses a fresh adapter)
        w.behave({})
        g.wait_status("dhan.alice", "live", timeout=8)
        if call == "subscribe" and how == "hang":
            # the stream the gateway held at the hang was refused; it asks again once live
            pass
        r = g.subscribe("dhan.alice", "NSE", "SBIN", 1)
        check(r["ok"], f"subscribe after recovery {r}")
        g.wait_ticks("dhan.alice|NSE_SBIN_LTP", 3)
    scenario.__name__ = f"s_{call}_{how}"
    return scenario


def s_stale_and_die(w):
    w.auth("alice", "fyers", "tokALICE-1234")
    w.start()
    g = w.gw
    g.open("fyers.alice", "fyers", "alice")
    g.wait_status("fyers.alice", "live")
    g.subscribe("fyers.alice", "NSE", "SBIN", 1)
    g.wait_ticks("fyers.alice|NSE_SBIN_LTP", 2)
    w.behave({"fyers": {"ticks": "stop"}})
    s, m = g.wait_status("fyers.alice", "stale", timeout=4)
    w.behave({})
    g.wait_status("fyers.alice", "live", timeout=4)
    w.behave({"fyers": {"die": True}})
    s, m = g.wait_status("fyers.alice", "reconnecting", timeout=4)
    check(m == "the fyers adapter reports it is disconnected", m)


def s_raw_socket_dropped(w):
    w.auth("alice", "dhan", "tokALICE-1234")
    w.behave({"dhan": {"raw_socket": True}})
    w.start()
    g = w.gw
    g.open("dhan.alice", "dhan", "alice")
    g.wait_status("dhan.alice", "live")
    g.subscribe("dhan.alice", "NSE", "SBIN", 1)
    g.idle(1.0)
    g.pump()
    check(not g.ticks, f"raw-socket ticks reached the bus: {g.ticks[:2]}")
    g.wait(lambda: any("outside a user's feed" in l for l in w.stderr_lines), 3, "the sink logged the drop")
    w.behave({})
    g.wait_ticks("dhan.alice|NSE_SBIN_LTP", 2)


def s_relogin(w):
    w.auth("alice", "fyers", "tokOLD-0000")
    w.start()
    g = w.gw
    g.open("fyers.alice", "fyers", "alice")
    g.wait_status("fyers.alice", "live")
    g.subscribe("fyers.alice", "NSE", "SBIN", 3)
    g.subscribe("fyers.alice", "NSE", "INFY", 1)
    check(g.wait_ticks("fyers.alice|NSE_SBIN_DEPTH", 2)[-1]["fake_token"] == "tokOLD-0", "old token")
    w.auth("alice", "fyers", "tokNEW-1111")
    r = g.call({"type": "relogin", "feed": "fyers.alice"})
    check(r["ok"], f"relogin {r}")
    g.wait(lambda: any(t[0] == "fyers.alice|NSE_SBIN_DEPTH" and t[1]["fake_token"] == "tokNEW-1" for t in g.ticks), 5, "new token's ticks")
    g.wait(lambda: any(t[0] == "fyers.alice|NSE_INFY_LTP" and t[1]["fake_token"] == "tokNEW-1" for t in g.ticks), 5, "INFY resubscribed")
    g.idle(0.3)
    calls = [c["call"] for c in w.calls(broker="fyers")]
    check(calls.count("disconnect") == 1 and calls.count("initialize") == 2, f"calls {calls}")
    subs = [(c["symbol"], c["mode"]) for c in w.calls(broker="fyers", call="subscribe")]
    check(sorted(subs) == [("INFY", 1), ("INFY", 1), ("SBIN", 3), ("SBIN", 3)], f"resubscribed once each {subs}")
    r = g.call({"type": "relogin", "feed": "dhan.nobody"})
    check(not r["ok"], "relogin of an unopened feed")


def s_restart_and_bye(w):
    w.auth("alice", "dhan", "tokALICE-1234")
    w.start()
    g = w.gw
    g.open("dhan.alice", "dhan", "alice")
    g.wait_status("dhan.alice", "live")
    g.subscribe("dhan.alice", "NSE", "SBIN", 2)
    g.wait_ticks("dhan.alice|NSE_SBIN_QUOTE", 2)
    w.proc.kill()
    w.proc.wait()
    g.registered = False
    w.start()  # a new process: a new epoch, the gateway registers again and replays
    check(g.open("dhan.alice", "dhan", "alice")["ok"], "replayed open")
    r = g.subscribe("dhan.alice", "NSE", "SBIN", 2)
    check(r["ok"], f"replayed subscribe (waits for the feed to connect) {r}")
    g.wait_ticks("dhan.alice|NSE_SBIN_QUOTE", 2)
    byes = g.byes
    t0 = time.monotonic()
    code = w.stop()
    g.wait(lambda: g.byes > byes, 2, "bye")
    check(code == 0, f"exit status {code}")
    check(time.monotonic() - t0 < 3, "stopped quickly")
    g.idle(0.1)
    check(w.calls(call="disconnect"), "adapter disconnected on stop")


def s_gateway_leaves(w):
    w.auth("alice", "dhan", "tokALICE-1234")
    w.start()
    g = w.gw
    g.open("dhan.alice", "dhan", "alice")
    g.wait_status("dhan.alice", "live")
    g.subscribe("dhan.alice", "NSE", "SBIN", 1)
    g.wait_ticks("dhan.alice|NSE_SBIN_LTP", 2)
    g.silent = True  # falls silent: the host drops it and closes the feed
    g.wait(lambda: w.calls(call="disconnect"), 3, "feed closed after silence")
    check(not w.calls(call="unsubscribe"), "closing unsubscribes nothing")
    n = len(g.ticks)
    g.idle(0.4)
    g.pump()
    check(len(g.ticks_of("dhan.alice", n + 2)) == 0, "no ticks after close")


def s_resync_drops_unreplayed(w):
    w.auth("alice", "dhan", "tokALICE-1234")
    w.auth("bob", "fyers", "tokBOB-5678")
    w.start()
    g = w.gw
    g.open("dhan.alice", "dhan", "alice")
    g.open("fyers.bob", "fyers", "bob")
    g.wait_status("dhan.alice", "live")
    g.wait_status("fyers.bob", "live")
    g.subscribe("dhan.alice", "NSE", "SBIN", 1)
    g.subscribe("fyers.bob", "NSE", "TCS", 1)
    # re-register and replay only alice's feed: bob's feed is closed once the digest ends the replay
    g.register()
    g.wait(lambda: g.registered, 3, "re-registered")
    check(g.open("dhan.alice", "dhan", "alice")["ok"], "replayed open")
    check(g.subscribe("dhan.alice", "NSE", "SBIN", 1)["ok"], "replayed subscribe")
    g.wait(lambda: w.calls(broker="fyers", call="disconnect"), 3, "bob's feed closed")
    check(not w.calls(broker="dhan", call="disconnect"), "alice's feed kept")
    check(len(w.calls(broker="dhan", call="subscribe")) == 1, "alice's stream not resubscribed")


def s_bad_config(w):
    r = subprocess.run([sys.executable, BRIDGE, "--openalgo-dir", w.dir, "--control", "tcp://127.0.0.1:1", "--bus",
                        "tcp://127.0.0.1:2", "--key-file", w.key_path, "--instance", "x"], capture_output=True, text=True)
    check(r.returncode == 2 and r.stderr.startswith("openalgo-bridge: ") and "not an OpenAlgo tree" in r.stderr, f"{r.returncode} {r.stderr!r}")
    r = subprocess.run([sys.executable, BRIDGE, "--openalgo-dir", w.oa, "--control", "tcp://127.0.0.1:1", "--bus",
                        "tcp://127.0.0.1:2", "--key-file", w.key_path + ".missing", "--instance", "x"], capture_output=True, text=True)
    check(r.returncode == 2 and "does not exist" in r.stderr, f"{r.returncode} {r.stderr!r}")
    r = subprocess.run([sys.executable, BRIDGE, "--openalgo-dir", w.oa], capture_output=True, text=True)
    check(r.returncode == 2 and r.stderr.startswith("openalgo-bridge: "), f"{r.returncode} {r.stderr!r}")
    with open(os.path.join(w.oa, "websocket_proxy", "broker_factory.py"), "a") as f:
        f.write("\nraise ImportError('no module named sqlalchemy')\n")
    r = subprocess.run([sys.executable, BRIDGE, "--openalgo-dir", w.oa, "--control", "tcp://127.0.0.1:1", "--bus",
                        "tcp://127.0.0.1:2", "--key-file", w.key_path, "--instance", "x"], capture_output=True, text=True)
    check(r.returncode == 2 and "ImportError: no module named sqlalchemy" in r.stderr, f"{r.returncode} {r.stderr!r}")


def s_refused(w):
    w.start()
    g = w.gw
    g.send_raw(frame(w.key, {"type": "refused", "epoch": g.epoch + 1, "message": "not you"}))
    g.idle(0.3)
    check(w.proc.poll() is None, "a refusal for another epoch is ignored")
    g.send_raw(frame(w.key, {"type": "refused", "epoch": g.epoch, "message": "feed openalgo is already served"}))
    w.proc.wait(5)
    check(w.proc.returncode == 3, f"exit status {w.proc.returncode}")


def s_garbage(w):
    w.auth("alice", "dhan", "tokALICE-1234")
    w.start()
    g = w.gw
    junk = [b"", b"{}", b"x" * 70, b"0" * 64 + b" not json", b"0" * 64 + b" []", b"0" * 64 + b' {"type":1}',
            b"0" * 64 + b" " + b" " * 70000, b"0" * 64 + b' {"type":"open"}', b"0" * 64 + b' {"type":"subscribe","gateway":"g","session":1,"seq":1e400}',
            frame(w.key, {"type": "register", "protocol": 2, "gateway": "x" * 200, "session": 1}),
            b"\xff" * 100]
    for j in junk:
        g.send_raw(j)
    g.router.send_multipart([g.peer, b"a", b"b"])
    # a forged session message with a wrong MAC
    g.send_raw(frame(b"k" * 32, {"type": "open", "gateway": g.gateway, "session": g.session, "seq": 999, "id": 1,
                                  "feed": "dhan.alice", "broker": "dhan", "user": "alice"}))
    g.idle(0.5)
    g.pump()
    check(w.proc.poll() is None, "still running")
    check(g.open("dhan.alice", "dhan", "alice")["ok"], "still answers")
    check(sum("malformed" in l for l in w.stderr_lines) <= 2, "malformed traffic logged sparingly")


SCENARIOS = [s_announce_and_two_users, s_mode_policy, s_no_token_then_token]
SCENARIOS += [behaviour_case(c, h) for c in ("initialize", "connect", "subscribe") for h in ("error", "raise", "hang")]
SCENARIOS += [s_stale_and_die, s_raw_socket_dropped, s_relogin, s_restart_and_bye, s_gateway_leaves,
              s_resync_drops_unreplayed, s_bad_config, s_refused, s_garbage]


def main():
    global VERBOSE, POOLING
    p = argparse.ArgumentParser()
    p.add_argument("-k", default="")
    p.add_argument("-v", action="store_true")
    p.add_argument("--no-pooling", action="store_true", help="run with ENABLE_CONNECTION_POOLING=false")
    a = p.parse_args()
    VERBOSE = a.v
    POOLING = not a.no_pooling
    env = {"ENABLE_CONNECTION_POOLING": "false"} if a.no_pooling else {}
    failures = 0
    for scenario in SCENARIOS:
        if a.k not in scenario.__name__:
            continue
        w = World(env_extra=env)
        t0 = time.monotonic()
        try:
            scenario(w)
            print(f"ok    {scenario.__name__} ({time.monotonic() - t0:.1f} s)", flush=True)
        except Exception as e:
            failures += 1
            print(f"FAIL  {scenario.__name__}: {e}", flush=True)
            if not isinstance(e, Failed):
                traceback.print_exc()
            for line in w.stderr_lines[-25:]:
                print("    | " + line)
        finally:
            w.close()
    print("all passed" if not failures else f"{failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
