"""A small stand-in for OpenAlgo's websocket_proxy package (for tickcast's tests).

Same module paths, class names, signatures and result shapes as OpenAlgo's, written from scratch
and much smaller: base_adapter (BaseBrokerWebSocketAdapter), connection_manager (SharedZmqPublisher,
ConnectionPool) and broker_factory (create_broker_adapter and its pooled wrapper).
"""
