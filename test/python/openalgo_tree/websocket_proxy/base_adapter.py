"""BaseBrokerWebSocketAdapter: what every OpenAlgo broker streaming adapter inherits.

As in OpenAlgo: an adapter created outside a connection pool opens its own ZeroMQ PUB socket and
connects it to the proxy's SUB at tcp://{ZMQ_HOST}:{ZMQ_PORT}; inside a pool it borrows the pool's
shared publisher (detected through connection_manager's thread-local creation context).
publish_market_data(topic, data) sends [topic, json] on whichever it has.
"""
import json
import os
import threading
from abc import ABC, abstractmethod

import zmq

from utils.logging import get_logger

logger = get_logger(__name__)

MAX_SYMBOLS_PER_WEBSOCKET = int(os.getenv("MAX_SYMBOLS_PER_WEBSOCKET", "1000"))
MAX_WEBSOCKET_CONNECTIONS = int(os.getenv("MAX_WEBSOCKET_CONNECTIONS", "3"))
ENABLE_CONNECTION_POOLING = os.getenv("ENABLE_CONNECTION_POOLING", "true").lower() == "true"


class BaseBrokerWebSocketAdapter(ABC):
    _shared_context = None
    _context_lock = threading.Lock()

    def __init__(self, use_shared_zmq: bool = False, shared_publisher=None):
        self.logger = get_logger("broker_adapter")
        try:
            from .connection_manager import get_shared_publisher_for_pooled_creation, is_pooled_creation

            if is_pooled_creation():
                use_shared_zmq = True
                shared_publisher = get_shared_publisher_for_pooled_creation()
        except ImportError:
            pass

        self._uses_shared_zmq = use_shared_zmq
        self._shared_publisher = shared_publisher
        if use_shared_zmq and shared_publisher:
            self.socket = shared_publisher.socket
            self.zmq_port = shared_publisher.zmq_port
            self.context = shared_publisher.context
        else:
            with self._context_lock:
                if BaseBrokerWebSocketAdapter._shared_context is None:
                    BaseBrokerWebSocketAdapter._shared_context = zmq.Context()
                self.context = BaseBrokerWebSocketAdapter._shared_context
                self.socket = self.context.socket(zmq.PUB)
            self.socket.setsockopt(zmq.LINGER, 1000)
            self.socket.setsockopt(zmq.SNDHWM, 1000)
            zmq_host = os.getenv("ZMQ_HOST", "127.0.0.1")
            self.zmq_port = int(os.getenv("ZMQ_PORT", "5555"))
            self.socket.connect(f"tcp://{zmq_host}:{self.zmq_port}")
        self.subscriptions = {}
        self.connected = False

    @abstractmethod
    def initialize(self, broker_name, user_id, auth_data=None):
        pass

    @abstractmethod
    def subscribe(self, symbol, exchange, mode=2, depth_level=5):
        pass

    @abstractmethod
    def unsubscribe(self, symbol, exchange, mode=2):
        pass

    @abstractmethod
    def connect(self):
        pass

    @abstractmethod
    def disconnect(self):
        pass

    def cleanup_zmq(self):
        if getattr(self, "_zmq_cleaned_up", False):
            return
        self._zmq_cleaned_up = True
        if getattr(self, "_uses_shared_zmq", False):
            return
        if getattr(self, "socket", None) is not None:
            self.socket.close(linger=0)
            self.socket = None

    def publish_market_data(self, topic, data):
        try:
            if self._uses_shared_zmq and self._shared_publisher:
                self._shared_publisher.publish(topic, data)
            elif self.socket:
                self.socket.send_multipart([topic.encode("utf-8"), json.dumps(data).encode("utf-8")])
            else:
                self.logger.warning("No ZMQ socket available for publishing")
        except Exception as e:
            self.logger.exception(f"Error publishing market data: {e}")

    def _create_success_response(self, message, **kwargs):
        response = {"status": "success", "message": message}
        response.update(kwargs)
        return response

    def _create_error_response(self, code, message):
        return {"status": "error", "code": code, "message": message}

    def get_auth_token_for_user(self, user_id: str, bypass_cache: bool = False):
        try:
            from database.auth_db import get_auth_token

            return get_auth_token(user_id, bypass_cache=bypass_cache)
        except Exception as e:
            self.logger.exception(f"Error getting auth token for user {user_id}: {e}")
            return None
