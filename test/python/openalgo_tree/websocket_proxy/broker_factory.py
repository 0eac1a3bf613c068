"""create_broker_adapter, as OpenAlgo's websocket_proxy.broker_factory has it.

The adapter class of broker `name` is `{Name}WebSocketAdapter` in broker.{name}.streaming.{name}_adapter
(imported on first use and remembered in BROKER_ADAPTERS). With pooling (ENABLE_CONNECTION_POOLING,
default "true") the result is a _PooledAdapterWrapper whose initialize() creates — or reuses, from
_POOLED_ADAPTERS under "{broker}_{user}" — a ConnectionPool, kept in its `_pool`; its disconnect()
also removes that pool from _POOLED_ADAPTERS.
"""
import importlib

from utils.logging import get_logger

from .base_adapter import ENABLE_CONNECTION_POOLING, MAX_SYMBOLS_PER_WEBSOCKET, MAX_WEBSOCKET_CONNECTIONS
from .connection_manager import ConnectionPool

logger = get_logger(__name__)

BROKER_ADAPTERS = {}
_POOLED_ADAPTERS = {}


def register_adapter(broker_name, adapter_class):
    BROKER_ADAPTERS[broker_name.lower()] = adapter_class


def _get_adapter_class(broker_name):
    broker_name = broker_name.lower()
    if broker_name in BROKER_ADAPTERS:
        return BROKER_ADAPTERS[broker_name]
    class_name = f"{broker_name.capitalize()}WebSocketAdapter"
    try:
        try:
            module = importlib.import_module(f"broker.{broker_name}.streaming.{broker_name}_adapter")
            adapter_class = getattr(module, class_name)
        except (ImportError, AttributeError) as e:
            logger.warning(f"Could not import from broker-specific path: {e}")
            module = importlib.import_module(f"websocket_proxy.{broker_name}_adapter")
            adapter_class = getattr(module, class_name)
        register_adapter(broker_name, adapter_class)
        return adapter_class
    except (ImportError, AttributeError) as e:
        logger.exception(f"Failed to load adapter for broker {broker_name}: {e}")
        raise ValueError(f"Unsupported broker: {broker_name}. No adapter available.")


def create_broker_adapter(broker_name, use_pooling=None):
    broker_name = broker_name.lower()
    pooling_enabled = use_pooling if use_pooling is not None else ENABLE_CONNECTION_POOLING
    adapter_class = _get_adapter_class(broker_name)
    if pooling_enabled:
        return _PooledAdapterWrapper(adapter_class, broker_name)
    return adapter_class()


class _PooledAdapterWrapper:
    def __init__(self, adapter_class, broker_name):
        self._adapter_class = adapter_class
        self._broker_name = broker_name
        self._pool = None
        self._user_id = None
        self.logger = get_logger(f"pooled_adapter_{broker_name}")

    def _ensure_pool(self, user_id):
        if self._pool is None:
            pool_key = f"{self._broker_name}_{user_id}"
            if pool_key in _POOLED_ADAPTERS:
                self._pool = _POOLED_ADAPTERS[pool_key]
            else:
                self._pool = ConnectionPool(
                    adapter_class=self._adapter_class,
                    broker_name=self._broker_name,
                    user_id=user_id,
                    max_symbols_per_connection=MAX_SYMBOLS_PER_WEBSOCKET,
                    max_connections=MAX_WEBSOCKET_CONNECTIONS,
                )
                _POOLED_ADAPTERS[pool_key] = self._pool
            self._user_id = user_id
        return self._pool

    def initialize(self, broker_name, user_id, auth_data=None, force=False):
        return self._ensure_pool(user_id).initialize(broker_name, user_id, auth_data, force=force)

    def connect(self):
        if self._pool:
            return self._pool.connect()
        return {"success": False, "error": "Not initialized"}

    def disconnect(self):
        if self._pool:
            self._pool.disconnect()
            _POOLED_ADAPTERS.pop(f"{self._broker_name}_{self._user_id}", None)

    def subscribe(self, symbol, exchange, mode=2, depth_level=5):
        if self._pool:
            return self._pool.subscribe(symbol, exchange, mode, depth_level)
        return {"status": "error", "message": "Not initialized"}

    def unsubscribe(self, symbol, exchange, mode=2):
        if self._pool:
            return self._pool.unsubscribe(symbol, exchange, mode)
        return {"status": "error", "message": "Not initialized"}

    def unsubscribe_all(self):
        if self._pool:
            self._pool.unsubscribe_all()

    @property
    def subscriptions(self):
        return self._pool.subscriptions if self._pool else {}

    @property
    def connected(self):
        return self._pool.connected if self._pool else False

    def publish_market_data(self, topic, data):
        if self._pool:
            self._pool.publish_market_data(topic, data)
