"""Connection pooling, as OpenAlgo's websocket_proxy.connection_manager does it.

SharedZmqPublisher is a process-wide singleton PUB connected to tcp://{ZMQ_HOST}:{ZMQ_PORT}.
ConnectionPool holds a user's broker adapters (one per MAX_SYMBOLS_PER_WEBSOCKET symbols, at most
MAX_WEBSOCKET_CONNECTIONS); each adapter it creates publishes through a closure that looks up
`self.shared_publisher` at call time. subscribe/unsubscribe keep OpenAlgo's mode hierarchy
(Depth 3 > Quote 2 > LTP 1): only an upgrade reaches the broker adapter, a covered mode is only
tracked, removing the highest mode downgrades, removing the last mode unsubscribes.
"""
import json
import os
import threading

import zmq

from utils.logging import get_logger

logger = get_logger(__name__)

_pooled_creation_context = threading.local()


def is_pooled_creation() -> bool:
    return getattr(_pooled_creation_context, "active", False)


def get_shared_publisher_for_pooled_creation():
    return getattr(_pooled_creation_context, "shared_publisher", None)


def _is_error(result) -> bool:
    return bool(result) and (result.get("success") is False or result.get("status") == "error")


class SharedZmqPublisher:
    _instance = None
    _lock = threading.Lock()

    def __new__(cls):
        if cls._instance is None:
            with cls._lock:
                if cls._instance is None:
                    cls._instance = super().__new__(cls)
                    cls._instance._initialized = False
        return cls._instance

    def __init__(self):
        if self._initialized:
            return
        self._initialized = True
        self.logger = get_logger("shared_zmq_publisher")
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.PUB)
        self.socket.setsockopt(zmq.LINGER, 1000)
        self.socket.setsockopt(zmq.SNDHWM, 1000)
        self.zmq_port = None
        self._connected = False
        self._publish_lock = threading.Lock()

    def connect(self) -> int:
        if self._connected:
            return self.zmq_port
        with self._lock:
            if not self._connected:
                zmq_host = os.getenv("ZMQ_HOST", "127.0.0.1")
                self.zmq_port = int(os.getenv("ZMQ_PORT", "5555"))
                self.socket.connect(f"tcp://{zmq_host}:{self.zmq_port}")
                self._connected = True
            return self.zmq_port

    def publish(self, topic: str, data: dict):
        if not self._connected:
            self.logger.error("Cannot publish: ZMQ publisher not connected")
            return
        with self._publish_lock:
            try:
                self.socket.send_multipart([topic.encode("utf-8"), json.dumps(data).encode("utf-8")])
            except Exception as e:
                self.logger.exception(f"Error publishing to ZMQ: {e}")


class ConnectionPool:
    def __init__(self, adapter_class, broker_name, user_id, max_symbols_per_connection=None, max_connections=None):
        self.adapter_class = adapter_class
        self.broker_name = broker_name
        self.user_id = user_id
        self.max_symbols = max_symbols_per_connection or int(os.getenv("MAX_SYMBOLS_PER_WEBSOCKET", "1000"))
        self.max_connections = max_connections or int(os.getenv("MAX_WEBSOCKET_CONNECTIONS", "3"))
        self.logger = get_logger(f"connection_pool_{broker_name}")
        self.lock = threading.RLock()
        self.adapters = []
        self.adapter_symbol_counts = []
        self.subscription_map = {}  # (symbol, exchange, mode) -> adapter index
        self.subscription_depths = {}
        self.shared_publisher = SharedZmqPublisher()
        self.initialized = False
        self.connected = False

    def _create_adapter(self):
        self.shared_publisher.connect()
        _pooled_creation_context.active = True
        _pooled_creation_context.shared_publisher = self.shared_publisher
        try:
            adapter = self.adapter_class()

            def shared_publish(topic: str, data: dict):
                self.shared_publisher.publish(topic, data)

            adapter.publish_market_data = shared_publish
            adapter._uses_shared_zmq = True
            adapter._shared_publisher = self.shared_publisher
            return adapter
        finally:
            _pooled_creation_context.active = False
            _pooled_creation_context.shared_publisher = None

    def _get_adapter_with_capacity(self):
        with self.lock:
            for idx, count in enumerate(self.adapter_symbol_counts):
                if count < self.max_symbols:
                    return idx, self.adapters[idx]
            if len(self.adapters) >= self.max_connections:
                raise RuntimeError(
                    f"Maximum capacity reached: {self.max_connections} connections × {self.max_symbols} symbols"
                )
            adapter = self._create_adapter()
            adapter.initialize(self.broker_name, self.user_id)
            adapter.connect()
            self.adapters.append(adapter)
            self.adapter_symbol_counts.append(0)
            return len(self.adapters) - 1, adapter

    def _get_existing_modes(self, symbol, exchange):
        return {m: idx for (s, e, m), idx in self.subscription_map.items() if s == symbol and e == exchange}

    def initialize(self, broker_name=None, user_id=None, auth_data=None, force=False):
        if self.initialized and not force:
            return {"success": True, "message": "Already initialized"}
        with self.lock:
            if force and self.initialized:
                for adapter in self.adapters:
                    try:
                        adapter.disconnect()
                    except Exception as e:
                        self.logger.warning(f"Error disconnecting adapter during re-init: {e}")
                self.adapters.clear()
                self.adapter_symbol_counts.clear()
                self.subscription_map.clear()
                self.subscription_depths.clear()
                self.connected = False
                self.initialized = False
            try:
                self.broker_name = broker_name or self.broker_name
                self.user_id = user_id or self.user_id
                self.shared_publisher.connect()
                adapter = self._create_adapter()
                result = adapter.initialize(self.broker_name, self.user_id, auth_data)
                if _is_error(result):
                    error_msg = result.get("message", result.get("error", "Initialization failed"))
                    return {"success": False, "error": error_msg}
                self.adapters.append(adapter)
                self.adapter_symbol_counts.append(0)
                self.initialized = True
                return {"success": True, "message": "Connection pool initialized"}
            except Exception as e:
                self.logger.exception(f"Failed to initialize connection pool: {e}")
                return {"success": False, "error": str(e)}

    def connect(self):
        if not self.initialized:
            return {"success": False, "error": "Not initialized"}
        if self.connected:
            return {"success": True, "message": "Already connected"}
        with self.lock:
            try:
                if not self.adapters:
                    return {"success": False, "error": "No adapters available"}
                result = self.adapters[0].connect()
                if _is_error(result):
                    return {"success": False, "error": result.get("message", result.get("error", "Connection failed"))}
                self.connected = True
                return {"success": True, "message": "Connected"}
            except Exception as e:
                self.logger.exception(f"Failed to connect: {e}")
                return {"success": False, "error": str(e)}

    def subscribe(self, symbol, exchange, mode=2, depth_level=5):
        sub_key = (symbol, exchange, mode)
        with self.lock:
            if sub_key in self.subscription_map:
                return {"status": "success", "message": f"Already subscribed to {symbol}.{exchange}",
                        "connection": self.subscription_map[sub_key] + 1}
            existing = self._get_existing_modes(symbol, exchange)
            try:
                if existing:
                    highest = max(existing)
                    adapter_idx = existing[highest]
                    if mode > highest:
                        result = self.adapters[adapter_idx].subscribe(symbol, exchange, mode, depth_level)
                        if result.get("status") == "success":
                            self.subscription_map[sub_key] = adapter_idx
                            self.subscription_depths[sub_key] = depth_level
                            result["connection"] = adapter_idx + 1
                        return result
                    self.subscription_map[sub_key] = adapter_idx
                    self.subscription_depths[sub_key] = depth_level
                    return {"status": "success", "message": f"Subscribed to {symbol}.{exchange} (covered by mode {highest})",
                            "connection": adapter_idx + 1}
                adapter_idx, adapter = self._get_adapter_with_capacity()
                result = adapter.subscribe(symbol, exchange, mode, depth_level)
                if result.get("status") == "success":
                    self.subscription_map[sub_key] = adapter_idx
                    self.subscription_depths[sub_key] = depth_level
                    self.adapter_symbol_counts[adapter_idx] += 1
                    result["connection"] = adapter_idx + 1
                return result
            except RuntimeError as e:
                return {"status": "error", "code": "MAX_CAPACITY_REACHED", "message": str(e)}
            except Exception as e:
                self.logger.exception(f"Error subscribing to {symbol}.{exchange}: {e}")
                return {"status": "error", "code": "SUBSCRIPTION_ERROR", "message": str(e)}

    def unsubscribe(self, symbol, exchange, mode=2):
        sub_key = (symbol, exchange, mode)
        with self.lock:
            if sub_key not in self.subscription_map:
                return {"status": "error", "code": "NOT_SUBSCRIBED", "message": f"Not subscribed to {symbol}.{exchange}"}
            adapter_idx = self.subscription_map.pop(sub_key)
            old_depth = self.subscription_depths.pop(sub_key, 5)
            adapter = self.adapters[adapter_idx]
            try:
                remaining = self._get_existing_modes(symbol, exchange)
                if not remaining:
                    result = adapter.unsubscribe(symbol, exchange, mode)
                    if result.get("status") == "success":
                        self.adapter_symbol_counts[adapter_idx] -= 1
                    else:
                        self.subscription_map[sub_key] = adapter_idx
                        self.subscription_depths[sub_key] = old_depth
                    return result
                new_highest = max(remaining)
                if mode > new_highest:
                    adapter.unsubscribe(symbol, exchange, mode)
                    result = adapter.subscribe(symbol, exchange, new_highest, 5)
                    if result.get("status") == "success":
                        return {"status": "success", "message": f"Unsubscribed mode {mode}, downgraded to mode {new_highest}"}
                    self.subscription_map[sub_key] = adapter_idx
                    self.subscription_depths[sub_key] = old_depth
                    adapter.subscribe(symbol, exchange, mode, old_depth)
                    return {"status": "error", "code": "DOWNGRADE_FAILED",
                            "message": f"Failed to downgrade {symbol}.{exchange} to mode {new_highest}"}
                return {"status": "success", "message": f"Unsubscribed from {symbol}.{exchange} mode {mode}"}
            except Exception as e:
                self.subscription_map.setdefault(sub_key, adapter_idx)
                self.subscription_depths.setdefault(sub_key, old_depth)
                self.logger.exception(f"Error unsubscribing from {symbol}.{exchange}: {e}")
                return {"status": "error", "code": "UNSUBSCRIPTION_ERROR", "message": str(e)}

    def unsubscribe_all(self):
        with self.lock:
            for adapter in self.adapters:
                if hasattr(adapter, "unsubscribe_all"):
                    adapter.unsubscribe_all()
            self.subscription_map.clear()
            self.subscription_depths.clear()
            self.adapter_symbol_counts = [0] * len(self.adapters)

    def disconnect(self):
        with self.lock:
            for adapter in self.adapters:
                try:
                    adapter.disconnect()
                except Exception as e:
                    self.logger.exception(f"Error disconnecting adapter: {e}")
            self.adapters.clear()
            self.adapter_symbol_counts.clear()
            self.subscription_map.clear()
            self.connected = False
            self.initialized = False

    @property
    def subscriptions(self):
        return {f"{k[0]}_{k[1]}_{k[2]}": {"symbol": k[0], "exchange": k[1], "mode": k[2]} for k in self.subscription_map}

    def publish_market_data(self, topic, data):
        self.shared_publisher.publish(topic, data)
