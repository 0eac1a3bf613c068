#!/usr/bin/env python3
"""tickcast's OpenAlgo bridge: OpenAlgo's broker adapters, one per (broker, user), in one process.

    python3 openalgo_bridge.py --openalgo-dir DIR --control ENDPOINT --bus ENDPOINT
        --key-file FILE --instance NAME [--feed openalgo] [--heartbeat-ms 1000]
        [--open-wait-ms 4000] [--call-timeout-ms 30000] [--stale-after-ms 30000]
        [--retry-min-ms 5000] [--retry-max-ms 60000] [--tick-period-check-ms 1000] [--parent-pid PID]

The bridge is a *feed host* of tickcast's control protocol (version 2; docs/control-protocol.md,
"Feed hosts"). It announces itself on the gateway's control endpoint (a ZeroMQ DEALER) as feed
`--feed` with broker "openalgo", no brokers of its own and `hosts` = the brokers the OpenAlgo tree
in DIR can stream. The gateway then `open`s one hosted feed per user, under a feed id it chooses;
the bridge creates that user's OpenAlgo broker adapter with OpenAlgo's own
websocket_proxy.broker_factory.create_broker_adapter, initializes and connects it, and publishes
its ticks on the gateway's bus (a ZeroMQ PUB that connects) as `<feed id>|<OpenAlgo topic>`, so a
user's ticks reach only that user's clients.

Loading OpenAlgo. The bridge changes into DIR, puts DIR first on sys.path and loads DIR/.env into
the environment without overriding variables already set. Before importing any OpenAlgo module
it binds a private ZeroMQ SUB (the *sink*) on a loopback port and points OpenAlgo's ZMQ_HOST and
ZMQ_PORT at it: whatever OpenAlgo publishes outside a user's tagged publisher (its own sockets,
its shared publisher) lands there, is counted, logged and dropped, and never reaches the bus.
OpenAlgo's own output on stdout is redirected to stderr; stdout carries only `ready`, printed once
the first registration is confirmed.

Attributing ticks. After initialize() and before connect(), the feed's FeedPublisher is attached:
for OpenAlgo's pooled wrapper (connection pooling, on by default) it replaces the pool's
`shared_publisher` (the pool's adapters publish through a closure that looks it up at call time,
and new connections of the pool borrow its socket, context and port, which FeedPublisher passes
through); for a plain adapter it becomes the instance's `publish_market_data`, as OpenAlgo's
ConnectionPool itself does.

Threads. Each hosted feed has a worker thread that makes its adapter's calls one at a time, in
order; the main thread owns all ZeroMQ control traffic, the protocol state and the timers, and
learns the workers' results through a queue (woken by a pipe). No adapter method is ever called on
the main thread. A call that does not return within --call-timeout-ms abandons its worker and
adapter (the adapter is disconnected in that thread if the call ever returns) and the feed is
reopened later with a fresh worker and adapter, so one hung or raising adapter never affects
another feed or the control loop.

Mode policy. For each stream (feed, exchange, symbol) the bridge remembers the set of modes it has
subscribed at the adapter, and the upstream union of the gateways' wants (highest mode, highest
depth), as a plain adapter does:
  - a union mode higher than every mode held (or mode 3 with a greater depth than held) → one
    adapter.subscribe(symbol, exchange, mode, depth);
  - a union mode lower than or equal to one held → no adapter call: OpenAlgo's adapters do not all
    downgrade safely (Dhan's unsubscribe of a lower mode drops the whole instrument), and ticks of
    the higher mode serve clients of the lower modes too;
  - an empty union → adapter.unsubscribe(symbol, exchange, mode) for each mode held, lowest first.
After every reopen (retry, relogin) the held modes start empty and each stream is subscribed once
at its union mode.

Statuses of a hosted feed (sent as `status` with `feed`): reconnecting while opening or while the
adapter reports itself disconnected, live, stale (streams subscribed and no tick for
--stale-after-ms), down with the broker's reason and the retry time (backoff from --retry-min-ms
doubling to --retry-max-ms; `relogin` reopens at once).

It stops (as on SIGTERM) when the process that started it goes away, so a supervisor killed
outright leaves no bridge behind.

Exit status: 0 after SIGTERM/SIGINT or its parent's end (byes sent, adapters disconnected); 2 configuration error
(not an OpenAlgo tree, bad key file or arguments, OpenAlgo failing to import); 3 refused by the
gateway. Diagnostics go to stderr, one line each, prefixed "openalgo-bridge: ".

Needs Python 3.10+, the standard library and pyzmq, plus whatever OpenAlgo's adapters import.
"""
import argparse
import collections
import hashlib
import hmac
import json
import os
import queue
import random
import re
import secrets
import signal
import socket
import sys
import threading
import time

try:
    import zmq
except ImportError as _e:  # pragma: no cover - depends on the machine
    print(f"openalgo-bridge: pyzmq is needed ({_e}); install it (Debian: python3-zmq)", file=sys.stderr, flush=True)
    sys.exit(2)

PROTOCOL = 2
MISSED_HEARTBEATS = 3
MAX_REGISTRATIONS = 1024
MAX_FEEDS = 1024
MAX_HOSTS = 256
MAX_JSON_BYTES = 65536
MAX_INT = 2**53 - 1
MAX_TEXT = 2000
LOG_EVERY = 10.0  # seconds between two log lines of one noisy kind
HEX64 = re.compile(rb"[0-9a-f]{64}")
HEX64_TEXT = re.compile(r"[0-9a-f]{64}")
FEED_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
BROKER_NAME = re.compile(r"[A-Za-z0-9_]{1,128}")
ENV_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*?)\s*")


class ConfigError(Exception):
    """A configuration problem: the bridge stops with exit status 2."""


def log(text):
    try:
        sys.stderr.write(f"openalgo-bridge: {text}\n")
        sys.stderr.flush()
    except Exception:
        pass


def seconds(ms):
    return f"{ms / 1000:g}"


def utf16_len(text):
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def clip(text, limit=MAX_TEXT):
    """Free text for the wire: at most `limit` UTF-16 code units (1999 and an ellipsis if longer)."""
    text = str(text)
    if utf16_len(text) <= limit:
        return text
    out, used = [], 0
    for ch in text:
        n = 2 if ord(ch) > 0xFFFF else 1
        if used + n > limit - 1:
            break
        out.append(ch)
        used += n
    return "".join(out) + "…"


def describe(exc):
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Throttled:
    """Logs one kind of line at most once per LOG_EVERY seconds, counting what it held back."""

    def __init__(self):
        self.lock = threading.Lock()
        self.last = {}
        self.held = collections.Counter()

    def __call__(self, kind, text):
        now = time.monotonic()
        with self.lock:
            if now - self.last.get(kind, -1e18) < LOG_EVERY:
                self.held[kind] += 1
                return
            self.last[kind] = now
            more = self.held.pop(kind, 0)
        log(text + (f" ({more} more like it since the last report)" if more else ""))


throttled = Throttled()


# ── keys, frames, digest ─────────────────────────────────────────────────────────────────────────


def read_instance_key(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            text = f.read().strip()
    except FileNotFoundError:
        raise ConfigError(f"control key file {path} does not exist (the gateway creates it; start it first or copy its file)")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read control key file {path}: {describe(e)}")
    if not HEX64_TEXT.fullmatch(text):
        raise ConfigError(f"control key file {path} does not hold 64 lower-case hex digits")
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


def entry_hash(feed, exchange, symbol, mode):
    """A host's digest entry: FNV-1a 32 over the UTF-16 code units of feed NUL exchange NUL symbol NUL mode."""
    data = f"{feed}\u0000{exchange}\u0000{symbol}\u0000{mode}".encode("utf-16-le", "surrogatepass")
    h = 0x811C9DC5
    for i in range(0, len(data), 2):
        h ^= data[i] | (data[i + 1] << 8)
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


# ── field validation (the protocol document's tables) ────────────────────────────────────────────


class Malformed(Exception):
    pass


def need_int(msg, field, minimum=0, optional=False):
    if optional and field not in msg:
        return
    value = msg.get(field)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Malformed(f"{field} is not an integer")
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf")) or value != int(value)):
        raise Malformed(f"{field} is not an integer")
    if not minimum <= value <= MAX_INT:
        raise Malformed(f"{field} is out of range")
    msg[field] = int(value)


def need_name(msg, field, limit, optional=False):
    if optional and field not in msg:
        return
    value = msg.get(field)
    if not isinstance(value, str) or not 1 <= utf16_len(value) <= limit:
        raise Malformed(f"{field} is not a name({limit})")


def need_text(msg, field, optional=False):
    if optional and field not in msg:
        return
    value = msg.get(field)
    if not isinstance(value, str) or utf16_len(value) > MAX_TEXT:
        raise Malformed(f"{field} is not text")


def need_hex64(msg, field):
    value = msg.get(field)
    if not isinstance(value, str) or not HEX64_TEXT.fullmatch(value):
        raise Malformed(f"{field} is not 64 lower-case hex digits")


SESSION_TYPES = ("heartbeat", "subscribe", "unsubscribe", "bye", "open", "relogin")


def validate(msg):
    """Checks the fields of a message a host receives; raises Malformed. Returns its type."""
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise Malformed("not a JSON object with a string type")
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
    elif t in SESSION_TYPES:
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
                raise Malformed("digest.sum is out of range")
        if t in ("subscribe", "unsubscribe", "open", "relogin"):
            need_int(msg, "id", 0)
        if t in ("subscribe", "unsubscribe"):
            need_name(msg, "exchange", 256)
            need_name(msg, "symbol", 256)
            need_name(msg, "feed", 128, optional=True)
        if t == "subscribe":
            need_int(msg, "mode", 1)
            if msg["mode"] not in (1, 2, 3):
                raise Malformed("mode is not 1, 2 or 3")
            need_int(msg, "depth", 0)
        if t == "open":
            need_name(msg, "feed", 128)
            need_name(msg, "broker", 128)
            need_name(msg, "user", 256)
        if t == "relogin":
            need_name(msg, "feed", 128)
    elif t in ("announce", "registered", "reset", "reply", "status"):
        pass  # a host's own kinds of message: valid, but nothing for a host to act on
    else:
        raise Malformed(f"unknown type {t[:40]!r}")
    return t


# ── loading OpenAlgo ─────────────────────────────────────────────────────────────────────────────


def load_dotenv(path):
    """Loads KEY=VALUE lines into os.environ without overriding what is set (python-dotenv's default)."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return 0
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {describe(e)}")
    loaded = 0
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = ENV_LINE.fullmatch(line)
        if not m:
            continue
        key, value = m.group(1), m.group(2)
        if value[:1] in ("'", '"'):
            quote = value[0]
            end = value.find(quote, 1)
            while quote == '"' and end > 0 and value[end - 1] == "\\":
                end = value.find(quote, end + 1)
            value = value[1:end] if end > 0 else value[1:]
            if quote == '"':
                value = value.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        else:
            value = re.sub(r"\s+#.*$", "", value)
        if key not in os.environ:
            os.environ[key] = value
            loaded += 1
    return loaded


def streamable_brokers(openalgo_dir, factory):
    names = set()
    broker_dir = os.path.join(openalgo_dir, "broker")
    try:
        entries = os.listdir(broker_dir)
    except OSError:
        entries = []
    for name in entries:
        if BROKER_NAME.fullmatch(name) and os.path.isfile(os.path.join(broker_dir, name, "streaming", f"{name}_adapter.py")):
            names.add(name)
    registered = getattr(factory, "BROKER_ADAPTERS", None)
    if isinstance(registered, dict):
        names.update(n for n in registered if isinstance(n, str) and BROKER_NAME.fullmatch(n))
    return sorted(names)[:MAX_HOSTS]


def adapter_error(result):
    """The error message of an OpenAlgo result dict, or None when it is not an error."""
    if not isinstance(result, dict):
        return None
    if result.get("status") == "error" or result.get("success") is False:
        return str(result.get("message") or result.get("error") or "failed")
    return None


# ── ticks ───────────────────────────────────────────────────────────────────────────────────────


class Bus:
    """The PUB connected to the gateway's bus, shared by every feed's publisher under one lock."""

    def __init__(self, ctx, endpoint):
        self.lock = threading.Lock()
        self.socket = ctx.socket(zmq.PUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.SNDHWM, 100_000)
        self.socket.connect(endpoint)

    def send(self, topic, payload):
        with self.lock:
            try:
                self.socket.send_multipart([topic, payload], zmq.NOBLOCK)
            except zmq.Again:
                pass

    def close(self):
        with self.lock:
            self.socket.close(0)


class FeedStats:
    """Counters of one hosted feed, written by adapter threads, read by the main thread."""

    def __init__(self):
        self.ticks = 0
        self.last_tick = None  # time.monotonic() of the last tick


class FeedPublisher:
    """A feed's tagged publisher: what a user's adapter publishes through, tagged with the feed id.

    It also stands in for OpenAlgo's shared publisher inside a connection pool: connect(), socket,
    context and zmq_port are those of the publisher it replaces (new pool connections borrow them).
    """

    def __init__(self, feed_id, broker, bus, stats, replaced=None):
        self.feed_id = feed_id
        self.broker = broker
        self.prefix = f"{feed_id}|".encode("utf-8")
        self.bus = bus
        self.stats = stats
        self.replaced = replaced
        self.enabled = True

    def publish(self, topic, data):
        try:
            if not self.enabled:
                return
            if not isinstance(topic, str) or not isinstance(data, dict):
                throttled(f"tick-{self.feed_id}", f"feed {self.feed_id}: {self.broker} published a tick that is not (topic, object): dropped")
                return
            payload = json.dumps(data).encode("utf-8")
            self.bus.send(self.prefix + topic.encode("utf-8"), payload)
            self.stats.ticks += 1
            self.stats.last_tick = time.monotonic()
        except Exception as e:  # never raise into the adapter
            throttled(f"tick-{self.feed_id}", f"feed {self.feed_id}: a tick could not be published: {describe(e)}")

    def connect(self):
        return self.replaced.connect() if self.replaced is not None else None

    @property
    def socket(self):
        return getattr(self.replaced, "socket", None)

    @property
    def context(self):
        return getattr(self.replaced, "context", None)

    @property
    def zmq_port(self):
        return getattr(self.replaced, "zmq_port", None)


# ── workers: one thread per hosted feed making its adapter's calls ──────────────────────────────


class Abandoned(Exception):
    """The worker was given up while a call was running: its result is of no use any more."""


class CallFailed(Exception):
    """An adapter call failed; the text is the feed's reason."""


class Job:
    def __init__(self, feed, kind, work, on_done=None):
        self.feed = feed
        self.kind = kind
        self.work = work  # work(worker) -> outcome dict; runs on the worker thread
        self.on_done = on_done  # on_done(outcome); runs on the main thread
        self.cleanup = None  # set by work: runs on the worker after the outcome is posted


class Worker:
    """Runs a feed's adapter calls in order, on its own daemon thread."""

    serial = 0

    def __init__(self, bridge, feed_id, broker):
        Worker.serial += 1
        self.bridge = bridge
        self.feed_id = feed_id
        self.broker = broker
        self.jobs = queue.Queue()
        self.adapter = None
        self.call_name = None
        self.call_started = None  # monotonic time the running call began, None when idle
        self.abandoned = False
        self.current_job = None
        self.thread = threading.Thread(target=self.run, name=f"feed-{feed_id}-{Worker.serial}", daemon=True)
        self.thread.start()

    def submit(self, job):
        self.jobs.put(job)

    def stop(self):
        self.jobs.put(None)

    def call(self, name, fn, *args):
        """Makes one adapter call, timed by the main thread. Raises Abandoned if given up meanwhile."""
        self.call_name = name
        self.call_started = time.monotonic()
        try:
            return fn(*args)
        finally:
            self.call_started = None
            if self.abandoned:
                raise Abandoned()

    def run(self):
        try:
            while not self.abandoned:
                job = self.jobs.get()
                if job is None:
                    return
                self.current_job = job
                try:
                    outcome = job.work(self)
                except Abandoned:
                    raise
                except Exception as e:  # a bug of ours must not kill the worker silently
                    outcome = {"ok": False, "message": f"{self.broker}: internal error: {describe(e)}"}
                if self.abandoned:
                    raise Abandoned()
                self.bridge.post(self, job, outcome)
                if job.cleanup is not None:
                    job.cleanup(self)
        except Abandoned:
            self.discard_adapter()

    def discard_adapter(self):
        adapter, self.adapter = self.adapter, None
        if adapter is None:
            return
        try:
            adapter.disconnect()
        except Exception as e:
            log(f"feed {self.feed_id}: disconnecting an abandoned {self.broker} adapter raised {describe(e)}")

    def disconnect_adapter(self):
        """Disconnects the current adapter (bounded by the call timeout); errors are only logged."""
        adapter, self.adapter = self.adapter, None
        if adapter is None:
            return
        try:
            self.call("disconnect()", adapter.disconnect)
        except Abandoned:
            raise
        except Exception as e:
            log(f"feed {self.feed_id}: {self.broker} disconnect() raised {describe(e)}")


# ── protocol state ──────────────────────────────────────────────────────────────────────────────


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


class Held:
    """What the adapter holds of one stream: the modes subscribed, the mode-3 depth asked, the depth delivered."""

    def __init__(self):
        self.modes = set()
        self.depth = 0
        self.delivered = None


class Op:
    """A command waiting for its feed: subscribe / unsubscribe from a gateway, or a sync of one stream."""

    def __init__(self, kind, stream, reg=None, msg=None):
        self.kind = kind  # "subscribe", "unsubscribe", "sync"
        self.stream = stream  # (exchange, symbol)
        self.reg = reg
        self.msg = msg
        self.arrived = time.monotonic()


class Feed:
    def __init__(self, feed_id, broker, user):
        self.id = feed_id
        self.broker = broker
        self.user = user
        self.opened_by = {}  # gateway id -> pending (True while its registration replays)
        self.status = "reconnecting"
        self.message = ""
        self.state = "opening"  # "opening", "up" (adapter connected), "down" (waiting to retry)
        self.opening_since = time.monotonic()
        self.worker = None
        self.publisher = None
        self.stats = FeedStats()
        self.backlog = collections.deque()
        self.inflight = None  # the Job running at the worker, if any
        self.busy = collections.Counter()  # stream -> ops queued or running
        self.upstream = {}  # (exchange, symbol) -> Held
        self.subscribed_since = None  # when upstream went from nothing to something
        self.live_since = None
        self.stale_since = None
        self.retry_at = None
        self.backoff_ms = None
        self.relogin = False  # a relogin is due as soon as the feed can take it
        self.reason = ""  # why it is down, without the retry part


# ── the bridge ──────────────────────────────────────────────────────────────────────────────────


class Bridge:
    def __init__(self, args, instance_key, ctx, sink, ready_out, hosts, create_adapter, factory):
        self.args = args
        self.instance_key = instance_key
        self.ctx = ctx
        self.sink = sink
        self.ready_out = ready_out
        self.hosts = hosts
        self.create_adapter = create_adapter
        self.factory = factory
        self.epoch = random.randrange(1, 2**47)
        self.heartbeat_ms = args.heartbeat_ms
        self.registrations = {}  # gateway id -> Registration
        self.wants = {}  # gateway id -> {(feed, exchange, symbol): {"mode", "depth", "pending"}}
        self.feeds = {}  # feed id -> Feed
        self.ready_said = False
        self.stopping = False
        self.exit_code = 0
        self.pool_lock = threading.Lock()
        self.results = queue.Queue()
        self.sink_dropped = 0
        self.host_name = (socket.gethostname() or "localhost")[:255]

        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)

        self.control = ctx.socket(zmq.DEALER)
        self.control.setsockopt(zmq.ROUTING_ID, b"tickcast-" + secrets.token_hex(8).encode("ascii"))
        self.control.setsockopt(zmq.IMMEDIATE, 1)
        self.control.setsockopt(zmq.SNDTIMEO, 0)
        self.control.setsockopt(zmq.SNDHWM, 10_000)
        self.control.setsockopt(zmq.MAXMSGSIZE, 1024 * 1024)
        self.control.setsockopt(zmq.LINGER, 0)
        self.control.connect(args.control)
        self.bus = Bus(ctx, args.bus)

    # ── plumbing ──

    def wake(self):
        try:
            os.write(self.wake_w, b"!")
        except (BlockingIOError, OSError):
            pass  # the pipe is full: the main thread is awake anyway

    def post(self, worker, job, outcome):
        """Called on a worker thread: hands a job's outcome to the main thread."""
        self.results.put((worker, job, outcome))
        self.wake()

    def identity(self):
        return {
            "protocol": PROTOCOL,
            "feed": self.args.feed,
            "broker": "openalgo",
            "brokers": [],
            "hosts": self.hosts,
            "instance": self.args.instance,
            "pid": os.getpid(),
            "host": self.host_name,
            "epoch": self.epoch,
            "heartbeatMs": self.heartbeat_ms,
        }

    def send(self, frame):
        try:
            self.control.send(frame)
        except zmq.Again:
            pass  # no gateway connected: dropped; announces and registers are repeated
        except zmq.ZMQError as e:
            throttled("send", f"control send failed: {describe(e)}")

    def send_session(self, reg, message):
        reg.seq_out += 1
        body = {"type": message.pop("type"), "gateway": reg.gateway, "session": reg.session, "seq": reg.seq_out}
        body.update(message)
        self.send(make_frame(reg.to_gateway, body))

    def reply(self, reg, msg, ok, message=None, depth=None):
        if self.registrations.get(reg.gateway) is not reg:
            return  # that registration is over: nobody waits for this answer
        out = {"type": "reply", "id": msg["id"], "ok": bool(ok)}
        if ok and isinstance(depth, int) and not isinstance(depth, bool) and 0 <= depth <= MAX_INT:
            out["depth"] = depth
        if not ok:
            out["message"] = clip(message or "failed")
        self.send_session(reg, out)

    def announce(self):
        self.send(make_frame(self.instance_key, {"type": "announce", **self.identity()}))

    def say_ready(self):
        if self.ready_said:
            return
        self.ready_said = True
        try:
            self.ready_out.write("ready\n")
            self.ready_out.flush()
        except Exception:
            pass

    # ── incoming frames ──

    def on_frame(self, data):
        if data[:1] == b"{":
            throttled("v1", "version-1 control frame dropped (this bridge speaks protocol 2)")
            return
        if len(data) < 66 or data[64:65] != b" " or not HEX64.fullmatch(data[:64]):
            return throttled("malformed", "malformed control frame dropped")
        mac, body = data[:64], data[65:]
        if len(body) > MAX_JSON_BYTES:
            return throttled("malformed", f"control frame of {len(body)} bytes dropped (the limit is {MAX_JSON_BYTES})")
        try:
            msg = json.loads(body.decode("utf-8"))
            t = validate(msg)
        except (ValueError, OverflowError, RecursionError, Malformed) as e:
            return throttled("malformed", f"malformed control frame dropped: {clip(describe(e), 200)}")

        if t in ("register", "refused"):
            if not verify(self.instance_key, body, mac):
                return throttled("unauthenticated", f"unauthenticated {t} dropped (is the key file the gateway's?)")
            return self.on_register(msg) if t == "register" else self.on_refused(msg)
        if t not in SESSION_TYPES:
            return

        reg = self.registrations.get(msg["gateway"])
        if reg is None or reg.session != msg["session"]:
            if t != "bye":
                self.send(make_frame(self.instance_key, {
                    "type": "reset", "gateway": msg["gateway"], "session": msg["session"],
                    "message": f'Feed "{self.args.feed}" does not know this gateway\'s registration; register again',
                }))
            return
        if not verify(reg.to_adapter, body, mac):
            return throttled("unauthenticated", f"unauthenticated {t} from gateway {clip(reg.gateway, 128)} dropped")
        if msg["seq"] <= reg.last_seq_in:
            return  # a replay or a duplicate
        reg.last_seq_in = msg["seq"]
        reg.last_heard = time.monotonic()
        if not reg.confirmed:
            self.confirm(reg)
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
            return throttled("registrations", f"register of gateway {msg['gateway'][:128]} ignored: {MAX_REGISTRATIONS} registrations held")
        reg = Registration(msg["gateway"], msg["session"], msg["nonce"], msg["heartbeatMs"], self.instance_key)
        reg.registered_frame = make_frame(self.instance_key, {
            "type": "registered", **self.identity(),
            "gateway": reg.gateway, "session": reg.session,
            "gatewayNonce": reg.gateway_nonce, "nonce": reg.nonce, "status": "live",
        })
        self.registrations[reg.gateway] = reg
        self.wants.setdefault(reg.gateway, {})
        self.send(reg.registered_frame)
        log(f"registered gateway {reg.gateway} (session {reg.session}, pid {msg['pid']} on {msg['host']})")

    def confirm(self, reg):
        reg.confirmed = True
        for entry in self.wants.get(reg.gateway, {}).values():
            entry["pending"] = True
        for feed in self.feeds.values():
            if reg.gateway in feed.opened_by:
                feed.opened_by[reg.gateway] = True
        log(f"registration of gateway {reg.gateway} session {reg.session} confirmed")
        self.say_ready()

    def on_refused(self, msg):
        if msg.get("epoch") != self.epoch:
            return
        log(f"refused by the gateway: {msg['message']}")
        self.exit_code = 3
        self.stopping = True

    def on_heartbeat(self, reg, msg):
        resync = False
        if "digest" in msg:
            self.end_replay(reg)
            mine = self.wants.get(reg.gateway, {})
            count, total = 0, 0
            for (feed_id, exchange, symbol), entry in mine.items():
                count += 1
                total = (total + entry_hash(feed_id, exchange, symbol, entry["mode"])) & 0xFFFFFFFF
            resync = count != msg["digest"]["count"] or total != msg["digest"]["sum"]
            if resync:
                log(f"gateway {reg.gateway}: digest differs ({count} streams here, {msg['digest']['count']} there): resync")
        self.send_session(reg, {"type": "heartbeat", "resync": resync, "status": "live"})

    def end_replay(self, reg):
        """A digest arrived: whatever the gateway did not replay since its registration is dropped."""
        mine = self.wants.get(reg.gateway, {})
        released = [key for key, entry in mine.items() if entry["pending"]]
        for key in released:
            del mine[key]
        kept_feeds = {key[0] for key in mine}
        for feed in list(self.feeds.values()):
            if feed.opened_by.get(reg.gateway) and feed.id not in kept_feeds:
                del feed.opened_by[reg.gateway]
        touched = collections.defaultdict(list)
        for feed_id, exchange, symbol in released:
            touched[feed_id].append((exchange, symbol))
        self.after_release(touched)

    def on_bye(self, reg, msg):
        log(f"gateway {reg.gateway} said bye")
        self.drop(reg.gateway)

    def drop(self, gateway):
        self.registrations.pop(gateway, None)
        released = self.wants.pop(gateway, {})
        touched = collections.defaultdict(list)
        for feed_id, exchange, symbol in released:
            touched[feed_id].append((exchange, symbol))
        for feed in self.feeds.values():
            feed.opened_by.pop(gateway, None)
        self.after_release(touched)

    def after_release(self, touched):
        """Closes the feeds nobody has open any more, and brings the others' released streams in line."""
        for feed in list(self.feeds.values()):
            if not feed.opened_by:
                self.close_feed(feed)
        for feed_id, streams in touched.items():
            feed = self.feeds.get(feed_id)
            if feed is None or feed.state != "up":
                continue  # a reopen subscribes the union afresh
            for stream in streams:
                self.enqueue(feed, Op("sync", stream))
            self.pump(feed)

    # ── host commands ──

    def on_open(self, reg, msg):
        feed_id, broker, user = msg["feed"], msg["broker"], msg["user"]
        if not FEED_ID.fullmatch(feed_id):
            return self.reply(reg, msg, False, f"{feed_id!r} is not a valid feed id")
        if broker not in self.hosts:
            return self.reply(reg, msg, False, f"this OpenAlgo tree has no streaming adapter for broker {broker!r}")
        feed = self.feeds.get(feed_id)
        if feed is not None:
            if feed.broker != broker or feed.user != user:
                return self.reply(reg, msg, False, f"feed {feed_id} is open for {feed.broker} user {feed.user}, not {broker} user {user}")
            feed.opened_by[reg.gateway] = False
            self.reply(reg, msg, True)
            self.send_feed_status(feed, reg)
            return
        if len(self.feeds) >= MAX_FEEDS:
            return self.reply(reg, msg, False, f"this bridge has {MAX_FEEDS} feeds open already")
        feed = Feed(feed_id, broker, user)
        feed.opened_by[reg.gateway] = False
        self.feeds[feed_id] = feed
        self.reply(reg, msg, True)
        log(f"feed {feed_id}: opening {broker} for user {user} (asked by gateway {reg.gateway})")
        self.start_open(feed)

    def on_relogin(self, reg, msg):
        feed = self.feeds.get(msg["feed"])
        if feed is None or reg.gateway not in feed.opened_by:
            return self.reply(reg, msg, False, f"feed {msg['feed']} is not open for this gateway")
        self.reply(reg, msg, True)
        log(f"feed {feed.id}: relogin of {feed.broker} user {feed.user}")
        if feed.state == "down":
            self.start_open(feed, relogin=True)
        elif feed.state == "up" and feed.inflight is None:
            self.start_open(feed, relogin=True)
        else:
            feed.relogin = True  # when the running call or open is over

    def host_feed(self, reg, msg):
        """The feed a subscribe / unsubscribe is for, or None after answering why not."""
        feed_id = msg.get("feed")
        if feed_id is None:
            self.reply(reg, msg, False, f"{self.args.feed} hosts many users' feeds: a {msg['type']} needs a feed")
            return None
        feed = self.feeds.get(feed_id)
        if feed is None or reg.gateway not in feed.opened_by:
            if msg["type"] == "unsubscribe":
                self.wants.get(reg.gateway, {}).pop((feed_id, msg["exchange"], msg["symbol"]), None)
                self.reply(reg, msg, True)
            else:
                self.reply(reg, msg, False, f"feed {feed_id} is not open for this gateway")
            return None
        return feed

    def on_subscribe(self, reg, msg):
        feed = self.host_feed(reg, msg)
        if feed is None:
            return
        stream = (msg["exchange"], msg["symbol"])
        if feed.state == "down":
            return self.reply(reg, msg, False, feed.message)
        op = Op("subscribe", stream, reg, msg)
        if feed.state == "up" and not feed.busy[stream] and not feed.relogin:
            want = {"mode": msg["mode"], "depth": msg["depth"], "pending": False}
            if self.plan(feed, stream, (reg.gateway, want)) is None:
                return self.run_op(feed, op)  # held already: answered at once
        self.enqueue(feed, op)
        self.pump(feed)

    def on_unsubscribe(self, reg, msg):
        feed = self.host_feed(reg, msg)
        if feed is None:
            return
        stream = (msg["exchange"], msg["symbol"])
        op = Op("unsubscribe", stream, reg, msg)
        if feed.state != "up" or (not feed.busy[stream] and self.plan(feed, stream, (reg.gateway, None)) is None):
            return self.run_op(feed, op)
        self.enqueue(feed, op)
        self.pump(feed)

    # ── wants and the upstream union ──

    def union(self, feed, stream, override=None):
        key = (feed.id, stream[0], stream[1])
        mode = depth = 0
        for gateway, mine in self.wants.items():
            entry = mine.get(key)
            if override is not None and override[0] == gateway:
                entry = override[1]
            if entry is not None:
                mode, depth = max(mode, entry["mode"]), max(depth, entry["depth"])
        if override is not None and override[0] not in self.wants and override[1] is not None:
            mode, depth = max(mode, override[1]["mode"]), max(depth, override[1]["depth"])
        return (mode, depth) if mode else None

    def plan(self, feed, stream, override=None):
        """What the adapter must be asked to bring this stream in line, or None (see the mode policy)."""
        union = self.union(feed, stream, override)
        held = feed.upstream.get(stream)
        if union is None:
            return ("unsubscribe", sorted(held.modes)) if held is not None and held.modes else None
        mode, depth = union
        top = max(held.modes) if held is not None and held.modes else 0
        if mode > top:
            return ("subscribe", mode, depth)
        if mode == 3 and 3 in held.modes and depth > held.depth:
            return ("subscribe", 3, depth)
        return None

    def enqueue(self, feed, op, front=False):
        feed.busy[op.stream] += 1
        (feed.backlog.appendleft if front else feed.backlog.append)(op)

    def finish_op(self, feed, op):
        feed.busy[op.stream] -= 1
        if feed.busy[op.stream] <= 0:
            del feed.busy[op.stream]

    def pump(self, feed):
        """Runs the feed's waiting commands while its adapter is up and idle."""
        while self.feeds.get(feed.id) is feed and feed.state == "up" and feed.inflight is None:
            if feed.relogin:
                feed.relogin = False
                self.start_open(feed, relogin=True)
                return
            if not feed.backlog:
                return
            op = feed.backlog.popleft()
            self.finish_op(feed, op)
            self.run_op(feed, op)

    def run_op(self, feed, op):
        """Applies one command to the wants and, if the adapter must be asked, starts that call."""
        reg, msg, stream = op.reg, op.msg, op.stream
        if reg is not None and self.registrations.get(reg.gateway) is not reg:
            return  # its registration is over
        key = (feed.id, stream[0], stream[1])
        mine = self.wants.setdefault(reg.gateway, {}) if reg is not None else None
        before = None
        if op.kind == "subscribe":
            before = mine.get(key)
            mine[key] = {"mode": msg["mode"], "depth": msg["depth"], "pending": False}
        elif op.kind == "unsubscribe":
            mine.pop(key, None)
        action = self.plan(feed, stream) if feed.state == "up" else None
        if action is None:
            if op.kind == "subscribe":
                held = feed.upstream.get(stream)
                self.reply(reg, msg, True, depth=held.delivered if held is not None else None)
            elif op.kind == "unsubscribe":
                self.reply(reg, msg, True)
            return

        def done(outcome):
            if op.kind == "subscribe":
                if outcome["ok"]:
                    self.reply(reg, msg, True, depth=outcome.get("depth"))
                else:
                    if self.registrations.get(reg.gateway) is reg:
                        current = self.wants.setdefault(reg.gateway, {})
                        if before is None:
                            current.pop(key, None)
                        else:
                            current[key] = before
                    self.reply(reg, msg, False, outcome["message"])
            elif op.kind == "unsubscribe":
                self.reply(reg, msg, True)
            elif not outcome["ok"]:
                log(f"feed {feed.id}: {stream[0]}:{stream[1]}: {outcome['message']}")

        self.start_call(feed, stream, action, done)

    def start_call(self, feed, stream, action, done):
        broker = feed.broker
        exchange, symbol = stream

        if action[0] == "subscribe":
            mode, depth = action[1], action[2]
            depth_arg = depth if depth > 0 else 5

            def work(worker):
                adapter = worker.adapter
                if adapter is None:
                    return {"ok": False, "message": f"the {broker} adapter is not open"}
                try:
                    result = worker.call("subscribe()", adapter.subscribe, symbol, exchange, mode, depth_arg)
                except Abandoned:
                    raise
                except Exception as e:
                    return {"ok": False, "message": f"{broker} adapter raised {describe(e)}"}
                error = adapter_error(result)
                if error is None and not (isinstance(result, dict) and (result.get("status") == "success" or result.get("success") is True)):
                    error = f"{broker} adapter answered {clip(repr(result), 200)}"
                if error is not None:
                    return {"ok": False, "message": error}
                actual = result.get("actual_depth")
                if isinstance(actual, bool) or not isinstance(actual, int) or not 0 <= actual <= MAX_INT:
                    actual = None
                return {"ok": True, "depth": actual}

            def on_done(outcome):
                if outcome["ok"]:
                    held = feed.upstream.get(stream)
                    if held is None:
                        held = feed.upstream[stream] = Held()
                        if feed.subscribed_since is None:
                            feed.subscribed_since = time.monotonic()
                    held.modes.add(mode)
                    if mode == 3:
                        held.depth = max(held.depth, depth)
                    if outcome.get("depth") is not None:
                        held.delivered = outcome["depth"]
                    outcome["depth"] = held.delivered
                done(outcome)
        else:
            modes = action[1]

            def work(worker):
                adapter = worker.adapter
                problems = []
                for m in modes:
                    if adapter is None:
                        break
                    try:
                        error = adapter_error(worker.call("unsubscribe()", adapter.unsubscribe, symbol, exchange, m))
                    except Abandoned:
                        raise
                    except Exception as e:
                        error = f"raised {describe(e)}"
                    if error is not None:
                        problems.append(f"mode {m}: {error}")
                if problems:
                    return {"ok": False, "message": f"{broker} unsubscribe failed: " + "; ".join(problems)}
                return {"ok": True}

            def on_done(outcome):
                feed.upstream.pop(stream, None)
                if not feed.upstream:
                    feed.subscribed_since = None
                if not outcome["ok"]:
                    log(f"feed {feed.id}: {exchange}:{symbol}: {outcome['message']}")
                    outcome = {"ok": True}
                done(outcome)

        job = Job(feed, "call", work, on_done)
        feed.inflight = job
        feed.worker.submit(job)

    # ── opening, failing, closing ──

    def set_status(self, feed, status, message=""):
        message = clip(message)
        if feed.status == status and feed.message == message:
            return
        feed.status, feed.message = status, message
        log(f"feed {feed.id}: {status}" + (f" ({message})" if message else ""))
        for gateway in feed.opened_by:
            reg = self.registrations.get(gateway)
            if reg is not None and reg.confirmed:
                self.send_feed_status(feed, reg)

    def send_feed_status(self, feed, reg):
        out = {"type": "status", "feed": feed.id, "status": feed.status}
        if feed.message:
            out["message"] = feed.message
        self.send_session(reg, out)

    def start_open(self, feed, relogin=False):
        """Opens (or, for a relogin, reopens) the feed's adapter on its worker."""
        feed.state = "opening"
        feed.opening_since = time.monotonic()
        feed.retry_at = None
        feed.relogin = False
        feed.live_since = None
        feed.upstream = {}
        feed.subscribed_since = None
        if feed.publisher is not None:
            feed.publisher.enabled = False
        if feed.worker is None:
            feed.worker = Worker(self, feed.id, feed.broker)
        what = "reopening" if relogin else "opening"
        self.set_status(feed, "reconnecting", f"{what} the {feed.broker} adapter for {feed.user}")
        broker, user = feed.broker, feed.user
        publisher = feed.publisher = FeedPublisher(feed.id, broker, self.bus, feed.stats)

        def work(worker):
            if relogin:
                worker.disconnect_adapter()
            return self.open_adapter(worker, broker, user, publisher)

        def on_done(outcome):
            if outcome["ok"]:
                self.opened(feed)
            else:
                self.failed(feed, outcome["message"])

        job = Job(feed, "open", work, on_done)
        feed.inflight = job
        feed.worker.submit(job)

    def open_adapter(self, worker, broker, user, publisher):
        """On the worker: create, initialize, attach the feed's publisher, connect."""

        def fail(text):
            # Report first; the half-open adapter is disconnected after the outcome is posted.
            publisher.enabled = False
            worker.current_job.cleanup = lambda w: w.disconnect_adapter()
            return {"ok": False, "message": f"{broker}: {text}"}

        self.forget_cached_session(broker, user)
        try:
            adapter = worker.call("create_broker_adapter()", self.create_adapter, broker)
        except Abandoned:
            raise
        except Exception as e:
            return {"ok": False, "message": f"{broker}: create_broker_adapter() raised {describe(e)}"}
        if adapter is None:
            return {"ok": False, "message": f"{broker}: create_broker_adapter() returned None"}
        worker.adapter = adapter
        try:
            result = worker.call("initialize()", adapter.initialize, broker, user)
        except Abandoned:
            raise
        except Exception as e:
            return fail(f"initialize() raised {describe(e)}")
        error = adapter_error(result)
        if error is not None:
            return fail(f"initialize failed: {error}")
        if hasattr(adapter, "_pool"):  # OpenAlgo's pooled wrapper: the pool publishes for its connections
            pool = getattr(adapter, "_pool", None)
            if pool is None or not hasattr(pool, "shared_publisher"):
                return fail(f"cannot attribute {broker}'s ticks to the user's feed")
            publisher.replaced = pool.shared_publisher
            pool.shared_publisher = publisher
        else:
            try:
                adapter.publish_market_data = publisher.publish
                attached = adapter.publish_market_data == publisher.publish
            except Exception:
                attached = False
            if not attached:
                return fail(f"cannot attribute {broker}'s ticks to the user's feed")
        try:
            result = worker.call("connect()", adapter.connect)
        except Abandoned:
            raise
        except Exception as e:
            return fail(f"connect() raised {describe(e)}")
        error = adapter_error(result)
        if error is not None:
            return fail(f"connect failed: {error}")
        return {"ok": True}

    def forget_cached_session(self, broker, user):
        """Makes the next open read the user's broker session afresh: OpenAlgo's token caches, its pool."""
        auth_db = sys.modules.get("database.auth_db")
        for cache_name, key in (("auth_cache", f"auth-{user}"), ("feed_token_cache", f"feed-{user}")):
            cache = getattr(auth_db, cache_name, None) if auth_db is not None else None
            if cache is not None:
                try:
                    cache.pop(key, None)
                except Exception:
                    pass
        pools = getattr(self.factory, "_POOLED_ADAPTERS", None)
        if isinstance(pools, dict):
            with self.pool_lock:
                pools.pop(f"{broker.lower()}_{user}", None)

    def opened(self, feed):
        feed.state = "up"
        feed.backoff_ms = None
        feed.reason = ""
        feed.live_since = time.monotonic()
        connected = self.adapter_connected(feed)
        if connected is False:
            self.set_status(feed, "reconnecting", f"the {feed.broker} adapter reports it is disconnected")
        else:
            self.set_status(feed, "live")
        # Subscribe every stream the gateways want, once, at its union (the held modes start empty).
        streams = set()
        for mine in self.wants.values():
            for feed_id, exchange, symbol in mine:
                if feed_id == feed.id:
                    streams.add((exchange, symbol))
        for stream in sorted(streams, reverse=True):
            self.enqueue(feed, Op("sync", stream), front=True)
        self.pump(feed)

    def failed(self, feed, reason):
        """The adapter could not be opened (or a call hung): down, and a retry after the backoff."""
        feed.state = "down"
        feed.live_since = None
        feed.upstream = {}
        feed.subscribed_since = None
        if feed.publisher is not None:
            feed.publisher.enabled = False
        if feed.relogin:
            feed.relogin = False
            feed.reason = reason
            self.fail_waiting(feed, reason)
            self.start_open(feed, relogin=True)
            return
        lo, hi = self.args.retry_min_ms, self.args.retry_max_ms
        wait = lo if feed.backoff_ms is None else min(hi, feed.backoff_ms * 2)
        feed.backoff_ms = wait
        feed.retry_at = time.monotonic() + wait / 1000
        feed.reason = reason
        self.set_status(feed, "down", f"{reason}; retrying in {seconds(wait)} s")
        self.fail_waiting(feed, feed.message)

    def fail_waiting(self, feed, message):
        while feed.backlog:
            op = feed.backlog.popleft()
            self.finish_op(feed, op)
            if op.kind == "subscribe":
                self.reply(op.reg, op.msg, False, message)
            elif op.kind == "unsubscribe":
                self.run_op(feed, op)  # state is not "up": only the want goes

    def close_feed(self, feed):
        """The last registration that opened the feed ended: disconnect its adapter and forget it."""
        if self.feeds.get(feed.id) is not feed:
            return
        del self.feeds[feed.id]
        log(f"feed {feed.id}: closed ({feed.broker} user {feed.user}; {feed.stats.ticks} ticks published)")
        while feed.backlog:
            op = feed.backlog.popleft()
            if op.kind == "subscribe":
                self.reply(op.reg, op.msg, False, f"feed {feed.id} was closed")
            elif op.kind == "unsubscribe":
                self.reply(op.reg, op.msg, True)
        feed.busy.clear()
        if feed.publisher is not None:
            feed.publisher.enabled = False
        worker, feed.worker = feed.worker, None
        if worker is not None and not worker.abandoned:
            worker.submit(Job(feed, "close", lambda w: self.close_work(w)))
            worker.stop()

    def close_work(self, worker):
        worker.disconnect_adapter()
        return {"ok": True}

    def adapter_connected(self, feed):
        """The adapter's own `connected` flag (for a pool: the pool's and each connection's), or None."""
        worker = feed.worker
        adapter = worker.adapter if worker is not None else None
        if adapter is None:
            return None
        try:
            pool = getattr(adapter, "_pool", None) if hasattr(adapter, "_pool") else None
            if pool is not None:
                if not getattr(pool, "connected", True):
                    return False
                for conn in list(getattr(pool, "adapters", []) or []):
                    if not getattr(conn, "connected", True):
                        return False
                return True
            if hasattr(adapter, "connected"):
                return bool(adapter.connected)
        except Exception:
            return None
        return None

    # ── results and timers ──

    def drain_results(self):
        while True:
            try:
                worker, job, outcome = self.results.get_nowait()
            except queue.Empty:
                return
            feed = job.feed
            if self.feeds.get(feed.id) is not feed or feed.worker is not worker or feed.inflight is not job:
                continue  # a closed feed's, or an abandoned worker's: of no use any more
            feed.inflight = None
            try:
                if job.on_done is not None:
                    job.on_done(outcome)
            finally:
                self.pump(feed)

    def check_calls(self, now):
        """Gives up workers whose adapter call has run longer than --call-timeout-ms."""
        limit = self.args.call_timeout_ms / 1000
        for feed in list(self.feeds.values()):
            worker = feed.worker
            if worker is None:
                continue
            started = worker.call_started
            if started is None or now - started <= limit:
                continue
            worker.abandoned = True
            feed.worker = None
            if feed.publisher is not None:
                feed.publisher.enabled = False
            reason = f"{feed.broker}: {worker.call_name} did not return within {seconds(self.args.call_timeout_ms)} s"
            job, feed.inflight = feed.inflight, None
            if job is not None and job.kind == "call":
                job_reason = f"{reason} (the adapter was given up)"
                try:
                    job.on_done({"ok": False, "message": job_reason})
                except Exception as e:
                    log(f"feed {feed.id}: {describe(e)}")
            if feed.state == "down" and job is None:
                log(f"feed {feed.id}: {reason}; its adapter was given up")
                continue
            self.failed(feed, reason)

    def check_feeds(self, now):
        stale_after = self.args.stale_after_ms / 1000
        for feed in list(self.feeds.values()):
            if feed.state != "up":
                continue
            connected = self.adapter_connected(feed)
            if connected is False:
                if feed.status != "reconnecting":
                    self.set_status(feed, "reconnecting", f"the {feed.broker} adapter reports it is disconnected")
                continue
            if feed.status == "reconnecting":
                feed.live_since = now
                self.set_status(feed, "live")
            last = feed.stats.last_tick
            if feed.status == "stale":
                if last is not None and last > feed.stale_since:
                    feed.live_since = now
                    self.set_status(feed, "live")
                continue
            if feed.status == "live" and feed.upstream:
                since = max(t for t in (feed.live_since, last, feed.subscribed_since) if t is not None)
                if now - since > stale_after:
                    feed.stale_since = now
                    self.set_status(feed, "stale", f"no tick from {feed.broker} for {seconds(self.args.stale_after_ms)} s")

    def check_waits(self, now):
        """Subscribes waiting for an opening feed longer than --open-wait-ms are answered."""
        wait = self.args.open_wait_ms / 1000
        for feed in list(self.feeds.values()):
            if feed.state != "opening" or not feed.backlog:
                continue
            keep = collections.deque()
            for op in feed.backlog:
                if op.kind == "subscribe" and now - max(op.arrived, feed.opening_since) >= wait:
                    self.finish_op(feed, op)
                    self.reply(op.reg, op.msg, False,
                               f"feed {feed.id} is still connecting to {feed.broker} ({feed.message}); it will be subscribed once live")
                else:
                    keep.append(op)
            feed.backlog = keep

    def check_retries(self, now):
        for feed in list(self.feeds.values()):
            if feed.state == "down" and feed.retry_at is not None and now >= feed.retry_at:
                log(f"feed {feed.id}: retrying {feed.broker} for user {feed.user}")
                self.start_open(feed)

    def check_silence(self, now):
        for reg in list(self.registrations.values()):
            limit = MISSED_HEARTBEATS * max(reg.heartbeat_ms, self.heartbeat_ms) / 1000
            if now - reg.last_heard > limit:
                log(f"gateway {reg.gateway} silent for {now - reg.last_heard:.1f} s: registration dropped")
                self.drop(reg.gateway)

    def drain_sink(self):
        for _ in range(10_000):
            try:
                parts = self.sink.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.sink_dropped += 1
            topic = parts[0][:80].decode("utf-8", "replace") if parts else ""
            throttled("sink", f"dropped a message OpenAlgo published outside a user's feed (topic {topic!r}; "
                              f"{self.sink_dropped} so far): it never reaches the bus")

    def next_deadline(self, now, next_announce, next_check):
        soon = min(next_announce, next_check, now + 0.25)
        for feed in self.feeds.values():
            if feed.retry_at is not None:
                soon = min(soon, feed.retry_at)
            if feed.state == "opening" and feed.backlog:
                soon = min(soon, max(feed.backlog[0].arrived, feed.opening_since) + self.args.open_wait_ms / 1000)
        return max(0.0, soon - now)

    # ── the loop ──

    def run(self):
        poller = zmq.Poller()
        poller.register(self.control, zmq.POLLIN)
        poller.register(self.sink, zmq.POLLIN)
        poller.register(self.wake_r, zmq.POLLIN)
        period = self.heartbeat_ms / 1000
        check_period = self.args.tick_period_check_ms / 1000
        next_announce = time.monotonic()
        next_check = time.monotonic() + check_period
        parent = self.parent
        while not self.stopping:
            now = time.monotonic()
            if now >= next_announce:
                if os.getppid() != parent:
                    log(f"the process that started the bridge (pid {parent}) has gone; stopping")
                    break
                self.announce()
                self.check_silence(now)
                next_announce = now + period
            if now >= next_check:
                self.check_feeds(now)
                next_check = now + check_period
            self.check_calls(now)
            self.check_waits(now)
            self.check_retries(now)
            timeout = self.next_deadline(time.monotonic(), next_announce, next_check)
            try:
                events = dict(poller.poll(timeout * 1000))
            except zmq.ZMQError as e:
                if e.errno == getattr(zmq, "EINTR", None):
                    continue
                raise
            if self.wake_r in events:
                try:
                    while os.read(self.wake_r, 4096):
                        pass
                except (BlockingIOError, OSError):
                    pass
            self.drain_results()
            if self.sink in events:
                self.drain_sink()
            if self.control in events:
                for _ in range(10_000):
                    if self.stopping:
                        break
                    try:
                        parts = self.control.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if len(parts) != 1:
                        throttled("malformed", f"control message of {len(parts)} parts dropped")
                        continue
                    try:
                        self.on_frame(parts[0])
                    except Exception as e:  # the control loop must survive anything
                        throttled("internal", f"internal error on a control frame: {describe(e)}")
        return self.stop()

    def stop(self):
        """Byes to every confirmed registration, then every adapter disconnected (bounded ~2 s)."""
        for reg in list(self.registrations.values()):
            if reg.confirmed:
                self.send_session(reg, {"type": "bye"})
        time.sleep(0.05)  # let the byes leave before the adapters are torn down
        workers = []
        for feed in list(self.feeds.values()):
            worker = feed.worker
            if feed.publisher is not None:
                feed.publisher.enabled = False
            if worker is not None and not worker.abandoned:
                worker.submit(Job(feed, "close", lambda w: self.close_work(w)))
                worker.stop()
                workers.append(worker)
        deadline = time.monotonic() + 2.0
        for worker in workers:
            worker.thread.join(max(0.0, deadline - time.monotonic()))
        left = sum(1 for w in workers if w.thread.is_alive())
        if left:
            log(f"{left} adapter(s) did not disconnect within 2 s; exiting anyway")
        log(f"stopped ({len(workers)} feed(s) closed)")
        return self.exit_code


# ── start ───────────────────────────────────────────────────────────────────────────────────────


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ConfigError(message)


def parse_args(argv):
    p = Parser(prog="openalgo_bridge.py", description="tickcast's OpenAlgo bridge (a feed host)")
    p.add_argument("--openalgo-dir", required=True)
    p.add_argument("--control", required=True)
    p.add_argument("--bus", required=True)
    p.add_argument("--key-file", required=True)
    p.add_argument("--instance", required=True)
    p.add_argument("--feed", default="openalgo")
    # Stop when this process is no longer our parent (default: the parent we were started by).
    p.add_argument("--parent-pid", type=int, default=None)
    for name, default in (("heartbeat-ms", 1000), ("open-wait-ms", 4000), ("call-timeout-ms", 30000),
                          ("stale-after-ms", 30000), ("retry-min-ms", 5000), ("retry-max-ms", 60000),
                          ("tick-period-check-ms", 1000)):
        p.add_argument(f"--{name}", type=int, default=default)
    args = p.parse_args(argv)
    if not FEED_ID.fullmatch(args.feed):
        raise ConfigError("--feed must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    if not 1 <= utf16_len(args.instance) <= 128:
        raise ConfigError("--instance must be 1 to 128 characters")
    for name in ("heartbeat_ms", "open_wait_ms", "call_timeout_ms", "stale_after_ms", "retry_min_ms",
                 "retry_max_ms", "tick_period_check_ms"):
        if not 1 <= getattr(args, name) <= 86_400_000:
            raise ConfigError(f"--{name.replace('_', '-')} must be between 1 and 86400000")
    args.retry_max_ms = max(args.retry_max_ms, args.retry_min_ms)  # a long --retry-min-ms lifts the ceiling
    return args


def main(argv=None):
    # The bridge lives as long as the process that started it (tickcast's supervisor): one killed
    # outright must not leave the bridge serving, nor a second one beside its successor's. The
    # supervisor names itself (it may die before this line runs); else the parent now is it.
    parent = os.getppid()
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        parent = args.parent_pid if args.parent_pid is not None else parent
        openalgo_dir = os.path.abspath(args.openalgo_dir)
        if not os.path.isfile(os.path.join(openalgo_dir, "websocket_proxy", "broker_factory.py")):
            raise ConfigError(f"{openalgo_dir} is not an OpenAlgo tree (it has no websocket_proxy/broker_factory.py)")
        instance_key = read_instance_key(os.path.abspath(args.key_file))
    except ConfigError as e:
        log(str(e))
        return 2

    # stdout carries `ready` alone: keep a handle on it, and send everything else written to fd 1
    # (OpenAlgo's own logging and prints included) to stderr.
    ready_out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    sys.stdout.flush()
    os.dup2(2, 1)

    try:
        os.chdir(openalgo_dir)
        sys.path.insert(0, openalgo_dir)
        load_dotenv(os.path.join(openalgo_dir, ".env"))
    except (ConfigError, OSError) as e:
        log(str(e))
        return 2

    ctx = zmq.Context()
    sink = ctx.socket(zmq.SUB)
    sink.setsockopt(zmq.LINGER, 0)
    sink.setsockopt(zmq.RCVHWM, 10_000)
    sink.setsockopt(zmq.SUBSCRIBE, b"")
    sink.bind("tcp://127.0.0.1:*")
    sink_port = sink.getsockopt(zmq.LAST_ENDPOINT).decode("ascii").rsplit(":", 1)[1]
    os.environ["ZMQ_HOST"] = "127.0.0.1"
    os.environ["ZMQ_PORT"] = sink_port

    try:
        from websocket_proxy import broker_factory  # noqa: E402 - OpenAlgo's, from DIR
        create_adapter = broker_factory.create_broker_adapter
    except BaseException as e:  # anything OpenAlgo's import raises, SystemExit included
        if isinstance(e, KeyboardInterrupt):
            return 0
        log(f"cannot import OpenAlgo's websocket_proxy.broker_factory from {openalgo_dir}: {describe(e)}")
        return 2

    hosts = streamable_brokers(openalgo_dir, broker_factory)
    bridge = Bridge(args, instance_key, ctx, sink, ready_out, hosts, create_adapter, broker_factory)
    bridge.parent = parent

    def on_signal(signum, frame):
        bridge.stopping = True
        bridge.wake()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log(f"hosting {len(hosts)} broker(s) of {openalgo_dir} as feed {args.feed} "
        f"(instance {args.instance}, epoch {bridge.epoch}); control {args.control}, bus {args.bus}")
    if not hosts:
        log("this OpenAlgo tree has no streaming adapters: no feed can be opened")
    return bridge.run()


if __name__ == "__main__":
    code = main()
    try:
        sys.stderr.flush()
    except Exception:
        pass
    # Adapters may have started non-daemon threads or hold ZeroMQ contexts: leave without waiting.
    os._exit(code)
