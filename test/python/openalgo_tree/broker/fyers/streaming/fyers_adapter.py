"""Stand-in for OpenAlgo's Fyers streaming adapter (see broker/fake_streaming.py for the fake market).

initialize() and connect() answer with success dicts, the token is read through auth_db's cache,
depth is always 5 levels, and unsubscribing a mode removes only that mode.
"""
from broker.fake_streaming import FakeStreamingAdapter


class FyersWebSocketAdapter(FakeStreamingAdapter):
    BROKER = "fyers"

    def _initialized_response(self):
        return self._create_success_response("Initialized")

    def _connected_response(self):
        return self._create_success_response("Connected")
