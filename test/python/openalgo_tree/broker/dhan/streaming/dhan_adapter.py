"""Stand-in for OpenAlgo's Dhan streaming adapter (see broker/fake_streaming.py for the fake market).

Like Dhan's: initialize() and connect() return None on success, the token is read with
bypass_cache=True, mode-3 depth is 20 levels when more than 5 are asked (else 5), and unsubscribing
any mode of an instrument drops the instrument altogether.
"""
from broker.fake_streaming import FakeStreamingAdapter


class DhanWebSocketAdapter(FakeStreamingAdapter):
    BROKER = "dhan"
    BYPASS_TOKEN_CACHE = True

    def _depth_for(self, depth_level):
        return 20 if depth_level > 5 else 5

    def _drop(self, symbol, exchange, mode):
        del self.fake_subs[(symbol, exchange)]
