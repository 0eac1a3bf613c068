#!/usr/bin/env python3
"""
Test vectors for the Upstox Market Data Feed v3 (test/fixtures/vectors/upstox.json).

    python3 scripts/vectors/gen_upstox.py SDK_CHECKOUT [--commit SHA] [--out FILE]

SDK_CHECKOUT is a checkout of github.com/upstox/upstox-python (the official `upstox_client`).
Needs Google's protobuf runtime for Python (Debian: python3-protobuf); nothing else from the SDK's
requirements (its network libraries are replaced by inert stand-ins, so nothing connects).

1. Every server frame is built here, field by field, from the wire format and the field numbers
   of MarketDataFeedV3.proto (the SCHEMA table below, written from the .proto, not generated).
   The builder's input is kept in each entry as `input`.
2. Each frame is decoded by the SDK's own code, loaded unmodified: MarketDataStreamerV3.
   handle_message (FeedResponse.FromString from the generated MarketDataFeedV3_pb2, then
   google.protobuf.json_format.MessageToDict), and what it emits is stored as `decoded`.
   A frame the SDK cannot parse is stored with `exception`.
3. The binary JSON requests the SDK sends (MarketDataFeederV3.build_request through
   MarketDataStreamerV3's connect/open/subscribe/change_mode/unsubscribe) are captured from a
   stand-in socket, with their opcode.
4. Self-check: the SDK's output must equal what this script expects from its own input
   (proto3 defaults omitted, int64 as strings, enums by name, the last oneof member winning),
   unless the entry says it is about a known difference; the run fails otherwise.
"""
import argparse
import hashlib
import importlib.util
import json
import os
import struct
import subprocess
import sys
import types

# Request guids come from sets and a random uuid: pin both so the output is reproducible.
if os.environ.get('PYTHONHASHSEED') != '0':
    os.environ['PYTHONHASHSEED'] = '0'
    os.execv(sys.executable, [sys.executable] + sys.argv)

# ---------------------------------------------------------------------------------------------
# The wire format, written out.

def varint(value):
    value &= (1 << 64) - 1  # negative int64 go as ten-byte two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number, wire):
    return varint((number << 3) | wire)


ENUMS = {
    'Type': ['initial_feed', 'live_feed', 'market_info'],
    'RequestMode': ['ltpc', 'full_d5', 'option_greeks', 'full_d30'],
    'MarketStatus': ['PRE_OPEN_START', 'PRE_OPEN_END', 'NORMAL_OPEN', 'NORMAL_CLOSE', 'CLOSING_START', 'CLOSING_END'],
}

# message -> field name -> (number, kind); kinds: double, int64, string, enum:E, M (message),
# repeated:M, map:M (map<string, M>), map:enum:E (map<string, E>).
SCHEMA = {
    'LTPC': {'ltp': (1, 'double'), 'ltt': (2, 'int64'), 'ltq': (3, 'int64'), 'cp': (4, 'double')},
    'MarketLevel': {'bidAskQuote': (1, 'repeated:Quote')},
    'MarketOHLC': {'ohlc': (1, 'repeated:OHLC')},
    'Quote': {'bidQ': (1, 'int64'), 'bidP': (2, 'double'), 'askQ': (3, 'int64'), 'askP': (4, 'double')},
    'OptionGreeks': {'delta': (1, 'double'), 'theta': (2, 'double'), 'gamma': (3, 'double'), 'vega': (4, 'double'), 'rho': (5, 'double')},
    'OHLC': {'interval': (1, 'string'), 'open': (2, 'double'), 'high': (3, 'double'), 'low': (4, 'double'),
             'close': (5, 'double'), 'vol': (6, 'int64'), 'ts': (7, 'int64')},
    'MarketFullFeed': {'ltpc': (1, 'LTPC'), 'marketLevel': (2, 'MarketLevel'), 'optionGreeks': (3, 'OptionGreeks'),
                       'marketOHLC': (4, 'MarketOHLC'), 'atp': (5, 'double'), 'vtt': (6, 'int64'), 'oi': (7, 'double'),
                       'iv': (8, 'double'), 'tbq': (9, 'double'), 'tsq': (10, 'double')},
    'IndexFullFeed': {'ltpc': (1, 'LTPC'), 'marketOHLC': (2, 'MarketOHLC')},
    'FullFeed': {'marketFF': (1, 'MarketFullFeed'), 'indexFF': (2, 'IndexFullFeed')},
    'FirstLevelWithGreeks': {'ltpc': (1, 'LTPC'), 'firstDepth': (2, 'Quote'), 'optionGreeks': (3, 'OptionGreeks'),
                             'vtt': (4, 'int64'), 'oi': (5, 'double'), 'iv': (6, 'double')},
    'Feed': {'ltpc': (1, 'LTPC'), 'fullFeed': (2, 'FullFeed'), 'firstLevelWithGreeks': (3, 'FirstLevelWithGreeks'),
             'requestMode': (4, 'enum:RequestMode')},
    'MarketInfo': {'segmentStatus': (1, 'map:enum:MarketStatus')},
    'FeedResponse': {'type': (1, 'enum:Type'), 'feeds': (2, 'map:Feed'), 'currentTs': (3, 'int64'), 'marketInfo': (4, 'MarketInfo')},
}
ONEOFS = {'Feed': ['ltpc', 'fullFeed', 'firstLevelWithGreeks'], 'FullFeed': ['marketFF', 'indexFF']}


def enum_number(enum, value):
    return ENUMS[enum].index(value) if isinstance(value, str) else value


def encode_scalar(number, kind, value):
    if kind == 'double':
        return tag(number, 1) + struct.pack('<d', value)
    if kind == 'int64':
        return tag(number, 0) + varint(value)
    if kind == 'string':
        data = value.encode('utf-8')
        return tag(number, 2) + varint(len(data)) + data
    if kind.startswith('enum:'):
        return tag(number, 0) + varint(enum_number(kind[5:], value))
    raise ValueError(kind)


def length_delimited(number, payload):
    return tag(number, 2) + varint(len(payload)) + payload


def encode(message, fields):
    """Fields in the order given; every value given is written, zeros included (see input)."""
    out = bytearray()
    for name, value in fields.items():
        number, kind = SCHEMA[message][name]
        if kind.startswith('repeated:'):
            for item in value:
                out += length_delimited(number, encode(kind[9:], item))
        elif kind.startswith('map:'):
            for key, item in value.items():
                entry = encode_scalar(1, 'string', key)
                if kind.startswith('map:enum:'):
                    if item is not None:  # a real proto3 encoder leaves a zero value out
                        entry += encode_scalar(2, kind[4:], item)
                else:
                    entry += length_delimited(2, encode(kind[4:], item))
                out += length_delimited(number, entry)
        elif kind in SCHEMA:
            out += length_delimited(number, encode(kind, value))
        else:
            out += encode_scalar(number, kind, value)
    return bytes(out)


def expected(message, fields):
    """What MessageToDict should print for `fields` (proto3 JSON mapping, SDK defaults)."""
    out = {}
    for name, value in fields.items():
        number, kind = SCHEMA[message][name]
        if name in ONEOFS.get(message, []):
            for other in ONEOFS[message]:
                out.pop(other, None)
        if kind.startswith('repeated:'):
            out[name] = out.get(name, []) + [expected(kind[9:], item) for item in value]
        elif kind.startswith('map:enum:'):
            names = ENUMS[kind[9:]]
            out.setdefault(name, {}).update({k: names[enum_number(kind[9:], v or 0)] for k, v in value.items()})
        elif kind.startswith('map:'):
            out.setdefault(name, {}).update({k: expected(kind[4:], v) for k, v in value.items()})
        elif kind in SCHEMA:
            merged = expected(kind, value)
            out[name] = merge(out.get(name, {}), merged)
        elif kind.startswith('enum:'):
            number_value = enum_number(kind[5:], value)
            if number_value:
                out[name] = ENUMS[kind[5:]][number_value]
            else:
                out.pop(name, None)
        elif value in (0, '', 0.0):
            out.pop(name, None)
        elif kind == 'int64':
            out[name] = str(value)
        else:
            out[name] = float(value) if kind == 'double' else value
    return out


def merge(old, new):
    result = dict(old)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        elif isinstance(value, list):
            result[key] = result.get(key, []) + value
        else:
            result[key] = value
    return result

# ---------------------------------------------------------------------------------------------
# The SDK, loaded unmodified, with inert stand-ins for what would touch the network.

def blob_sha1(data):
    return hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()


SENT = []      # (opcode, payload) from the stand-in socket
OPENED = []    # (url, header) of every WebSocketApp the SDK makes


class StandInSocket:
    sock = True

    def send(self, data, opcode=1):
        SENT.append((opcode, data))


class StandInWebSocketApp(StandInSocket):
    def __init__(self, url, header=None, **callbacks):
        OPENED.append({'url': url, 'header': dict(header or {})})

    def run_forever(self, **kwargs):
        return None  # never connects

    def close(self, **kwargs):
        return None


def load_sdk(root):
    websocket = types.ModuleType('websocket')
    websocket.WebSocketApp = StandInWebSocketApp
    websocket.ABNF = types.SimpleNamespace(OPCODE_TEXT=0x1, OPCODE_BINARY=0x2)
    sys.modules['websocket'] = websocket
    try:
        import urllib3  # noqa: F401  (configuration.py imports it; only a helper we never call uses it)
    except ImportError:
        sys.modules['urllib3'] = types.ModuleType('urllib3')

    # The packages without their __init__ (which import the whole REST client).
    for name, path in [('upstox_client', ''), ('upstox_client.feeder', 'feeder')]:
        package = types.ModuleType(name)
        package.__path__ = [os.path.join(root, 'upstox_client', path)]
        sys.modules[name] = package

    spec = importlib.util.spec_from_file_location('upstox_client.configuration', os.path.join(root, 'upstox_client', 'configuration.py'))
    configuration = importlib.util.module_from_spec(spec)
    sys.modules['upstox_client.configuration'] = configuration
    spec.loader.exec_module(configuration)

    class ApiClient:
        def __init__(self, configuration_=None):
            self.configuration = configuration_ or configuration.Configuration()

    api_client = types.ModuleType('upstox_client.api_client')
    api_client.ApiClient = ApiClient
    sys.modules['upstox_client.api_client'] = api_client

    import upstox_client.feeder.market_data_feeder_v3 as feeder_module
    import upstox_client.feeder.market_data_streamer_v3 as streamer_module

    counter = iter(range(1, 1000))
    feeder_module.uuid = types.SimpleNamespace(
        uuid4=lambda: '00000000-0000-4000-8000-%012d' % next(counter))
    config = configuration.Configuration()
    config.access_token = 'ACCESS_TOKEN'
    return streamer_module, ApiClient(config)


def official_decode(streamer_module, api, frame):
    streamer = streamer_module.MarketDataStreamerV3(api, [], 'ltpc')
    out = []
    streamer.on('message', out.append)
    try:
        streamer.handle_message(None, frame)
    except Exception as error:  # noqa: BLE001  the SDK's own exception is the ground truth
        return {'exception': '%s: %s' % (type(error).__name__, error)}
    decoded = out[0]
    # The C++ runtime iterates maps in an order that varies between processes: sort map keys
    # (only those) so the file is reproducible. Dict equality, as the self-check uses, is unaffected.
    if 'feeds' in decoded:
        decoded['feeds'] = dict(sorted(decoded['feeds'].items()))
    status = decoded.get('marketInfo', {}).get('segmentStatus')
    if status is not None:
        decoded['marketInfo']['segmentStatus'] = dict(sorted(status.items()))
    return {'decoded': decoded}

# ---------------------------------------------------------------------------------------------
# The frames.

RELIANCE = 'NSE_EQ|INE002A01018'
INFY = 'NSE_EQ|INE009A01021'
NIFTY = 'NSE_INDEX|Nifty 50'
BANKNIFTY = 'NSE_INDEX|Nifty Bank'
NIFTY_CE = 'NSE_FO|45450'
NIFTY_FUT = 'NSE_FO|35006'
CRUDE = 'MCX_FO|426268'
TS = 1718178369123   # 2024-06-12 13:16:09.123 IST, epoch ms
LTT = 1718178368000


def quotes(levels, start_bid, start_ask, step, qty):
    return [{'bidQ': qty + 10 * i, 'bidP': round(start_bid - step * i, 2),
             'askQ': qty + 15 * i, 'askP': round(start_ask + step * i, 2)} for i in range(levels)]


DAY_OHLC = {'interval': '1d', 'open': 2930.0, 'high': 2961.4, 'low': 2925.1, 'close': 2950.55, 'vol': 7512345, 'ts': 1718130600000}
MINUTE_OHLC = {'interval': 'I1', 'open': 2949.0, 'high': 2951.0, 'low': 2948.5, 'close': 2950.55, 'vol': 10234, 'ts': 1718178360000}


def frames():
    """(name, kind, input, note, expect_ok). `input` is a FeedResponse as field -> value."""
    yield ('market_info_first', 'market_info', {
        'type': 'market_info', 'currentTs': TS,
        'marketInfo': {'segmentStatus': {'NSE_EQ': 'NORMAL_OPEN', 'NSE_FO': 'NORMAL_OPEN', 'NSE_INDEX': 'NORMAL_OPEN',
                                         'BSE_EQ': 'NORMAL_OPEN', 'MCX_FO': 'NORMAL_OPEN', 'NCD_FO': 'CLOSING_END',
                                         'BCD_FO': 'NORMAL_CLOSE', 'NSE_COM': None, 'BSE_FO': 'PRE_OPEN_END'}}},
        'The first message after connecting. NSE_COM is PRE_OPEN_START (0): a proto3 encoder leaves the map value out; the SDK prints the enum name anyway.')
    yield ('ltpc_nse_eq_reliance', 'ltpc', {
        'type': 'live_feed', 'feeds': {RELIANCE: {'ltpc': {'ltp': 2950.55, 'ltt': LTT, 'ltq': 25, 'cp': 2921.15}}}, 'currentTs': TS},
        'requestMode ltpc is enum 0: absent on the wire and from the output.')
    yield ('ltpc_nse_index_nifty', 'ltpc', {
        'type': 'live_feed', 'feeds': {NIFTY: {'ltpc': {'ltp': 24851.2, 'ltt': LTT, 'cp': 24789.35}}}, 'currentTs': TS},
        'Indices have no last traded quantity: ltq absent.')
    yield ('full_nse_eq_depth5', 'full', {
        'feeds': {RELIANCE: {'fullFeed': {'marketFF': {
            'ltpc': {'ltp': 2950.55, 'ltt': LTT, 'ltq': 25, 'cp': 2921.15},
            'marketLevel': {'bidAskQuote': quotes(5, 2950.5, 2950.6, 0.05, 120)},
            'marketOHLC': {'ohlc': [DAY_OHLC, MINUTE_OHLC]},
            'atp': 2944.87, 'vtt': 7512345, 'tbq': 412345.0, 'tsq': 398765.0}}, 'requestMode': 'full_d5'}},
        'currentTs': TS},
        'The snapshot after a subscribe: type initial_feed (0), so absent. Equities carry no greeks, oi or iv.')
    yield ('full_d30_nse_eq_depth30', 'full_d30', {
        'type': 'live_feed',
        'feeds': {INFY: {'fullFeed': {'marketFF': {
            'ltpc': {'ltp': 1532.4, 'ltt': LTT, 'ltq': 3, 'cp': 1519.05},
            'marketLevel': {'bidAskQuote': quotes(30, 1532.35, 1532.45, 0.05, 40)},
            'marketOHLC': {'ohlc': [{'interval': '1d', 'open': 1520.0, 'high': 1540.0, 'low': 1515.5, 'close': 1532.4, 'vol': 5123456789, 'ts': 1718130600000}]},
            'atp': 1528.91, 'vtt': 5123456789, 'tbq': 123456.0, 'tsq': 654321.0}}, 'requestMode': 'full_d30'}},
        'currentTs': TS},
        'Thirty levels; volume above 2^32.')
    yield ('full_nse_index_nifty', 'index_full', {
        'type': 'live_feed',
        'feeds': {NIFTY: {'fullFeed': {'indexFF': {
            'ltpc': {'ltp': 24851.2, 'ltt': LTT, 'cp': 24789.35},
            'marketOHLC': {'ohlc': [{'interval': '1d', 'open': 24800.0, 'high': 24890.75, 'low': 24760.1, 'close': 24851.2, 'ts': 1718130600000},
                                    {'interval': 'I30', 'open': 24840.0, 'high': 24860.0, 'low': 24835.5, 'close': 24851.2, 'ts': 1718177400000}]}}},
            'requestMode': 'full_d5'}},
        'currentTs': TS},
        'IndexFullFeed: LTPC and candles only (no volume in the candles).')
    yield ('option_greeks_nse_fo_call', 'option_greeks', {
        'type': 'live_feed',
        'feeds': {NIFTY_CE: {'firstLevelWithGreeks': {
            'ltpc': {'ltp': 182.35, 'ltt': LTT, 'ltq': 75, 'cp': 160.1},
            'firstDepth': {'bidQ': 1500, 'bidP': 182.3, 'askQ': 2250, 'askP': 182.45},
            'optionGreeks': {'delta': 0.5123, 'theta': -12.84, 'gamma': 0.0009, 'vega': 13.27, 'rho': 2.1},
            'vtt': 98765400, 'oi': 4567800.0, 'iv': 14.32}, 'requestMode': 'option_greeks'}},
        'currentTs': TS},
        'FirstLevelWithGreeks for an option: best bid/ask, greeks, volume, open interest, implied volatility.')
    yield ('full_nse_fo_call_oi_greeks', 'full', {
        'type': 'live_feed',
        'feeds': {NIFTY_CE: {'fullFeed': {'marketFF': {
            'ltpc': {'ltp': 182.35, 'ltt': LTT, 'ltq': 75, 'cp': 160.1},
            'marketLevel': {'bidAskQuote': quotes(5, 182.3, 182.45, 0.05, 750)},
            'optionGreeks': {'delta': 0.5123, 'theta': -12.84, 'gamma': 0.0009, 'vega': 13.27, 'rho': 2.1},
            'marketOHLC': {'ohlc': [{'interval': '1d', 'open': 165.0, 'high': 190.0, 'low': 150.25, 'close': 182.35, 'vol': 98765400, 'ts': 1718130600000}]},
            'atp': 171.42, 'vtt': 98765400, 'oi': 4567800.0, 'iv': 14.32, 'tbq': 1234500.0, 'tsq': 987600.0}},
            'requestMode': 'full_d5'}},
        'currentTs': TS},
        'Full mode for a derivative: open interest, implied volatility and greeks inside MarketFullFeed.')
    yield ('full_mcx_fo_negative_price', 'full', {
        'type': 'live_feed',
        'feeds': {CRUDE: {'fullFeed': {'marketFF': {
            'ltpc': {'ltp': -37.63, 'ltt': LTT, 'ltq': 1, 'cp': 10.01},
            'marketLevel': {'bidAskQuote': [{'bidQ': 5, 'bidP': -37.7, 'askQ': 3, 'askP': -37.5}]},
            'atp': -12.5, 'vtt': 4200, 'oi': 1500.0}}, 'requestMode': 'full_d5'}},
        'currentTs': TS},
        'Prices are doubles and may be negative.')
    yield ('multi_instrument_live', 'multi', {
        'type': 'live_feed',
        'feeds': {
            RELIANCE: {'ltpc': {'ltp': 2950.6, 'ltt': LTT + 1000, 'ltq': 10, 'cp': 2921.15}},
            BANKNIFTY: {'fullFeed': {'indexFF': {'ltpc': {'ltp': 52110.45, 'ltt': LTT, 'cp': 51980.0}}}, 'requestMode': 'full_d5'},
            NIFTY_FUT: {'fullFeed': {'marketFF': {
                'ltpc': {'ltp': 24905.0, 'ltt': LTT, 'ltq': 25, 'cp': 24850.0},
                'marketLevel': {'bidAskQuote': quotes(5, 24904.9, 24905.1, 0.1, 250)},
                'atp': 24880.12, 'vtt': 3456789, 'oi': 12345675.0, 'tbq': 456000.0, 'tsq': 389000.0}}, 'requestMode': 'full_d5'},
            NIFTY_CE: {'firstLevelWithGreeks': {'ltpc': {'ltp': 182.4, 'ltt': LTT, 'ltq': 75, 'cp': 160.1},
                                                'optionGreeks': {'delta': 0.513}, 'oi': 4567875.0}, 'requestMode': 'option_greeks'}},
        'currentTs': TS},
        'Four instruments in three modes in one message.')
    yield ('full_missing_ltpc', 'missing', {
        'type': 'live_feed',
        'feeds': {RELIANCE: {'fullFeed': {'marketFF': {'marketLevel': {'bidAskQuote': quotes(5, 2950.45, 2950.6, 0.05, 100)}}},
                             'requestMode': 'full_d5'}},
        'currentTs': TS},
        'A full-mode update with depth only: no LTPC, no OHLC, no totals.')
    yield ('full_partial_book', 'missing', {
        'type': 'live_feed',
        'feeds': {INFY: {'fullFeed': {'marketFF': {
            'ltpc': {'ltp': 1532.4},
            'marketLevel': {'bidAskQuote': [{'bidQ': 40, 'bidP': 1532.35, 'askQ': 10, 'askP': 1532.45},
                                            {'bidQ': 25, 'bidP': 1532.3},
                                            {'bidQ': 5, 'bidP': 1532.0},
                                            {}, {}]}}}, 'requestMode': 'full_d5'}}},
        'A thin book: one ask, three bids, two empty levels (empty Quote messages); LTPC with ltp only; no currentTs.')
    yield ('ltpc_only_ltp_no_header', 'missing', {
        'feeds': {NIFTY: {'ltpc': {'ltp': 24851.25}}}},
        'Only ltp: type (initial_feed), currentTs, ltt, ltq, cp all absent.')
    yield ('explicit_defaults', 'missing', {
        'type': 'initial_feed',
        'feeds': {RELIANCE: {'requestMode': 'ltpc', 'ltpc': {'ltp': 2950.55, 'ltt': 0, 'ltq': 0, 'cp': 0.0}}},
        'currentTs': 0},
        'Zeros written explicitly (type 0, requestMode 0, ltt/ltq/cp 0, currentTs 0): proto3 cannot tell them from absent.')
    yield ('merged_and_reordered', 'wire', [
        ('feeds', {RELIANCE: {'requestMode': 'full_d5', 'fullFeed': {'marketFF': {'ltpc': {'ltp': 2950.0, 'ltt': LTT}}}}}),
        ('currentTs', TS - 5),
        ('feeds', {RELIANCE: {'fullFeed': {'marketFF': {'ltpc': {'ltq': 7}, 'vtt': 100}}}}),
        ('type', 'live_feed'),
        ('currentTs', TS),
    ], 'Fields out of order; the same map key twice (the later entry replaces the earlier one whole); currentTs twice (last wins).')
    yield ('oneof_last_wins', 'wire', {
        'type': 'live_feed',
        'feeds': {RELIANCE: {'ltpc': {'ltp': 1.0}, 'fullFeed': {'marketFF': {'ltpc': {'ltp': 2950.55}}}, 'requestMode': 'full_d5'}},
        'currentTs': TS},
        'Two members of the Feed oneof in one Feed: the later (fullFeed) wins.')


def raw_frames(build):
    """Frames not describable as a FeedResponse input: unknown fields, wrong wire types, damage."""
    full = build('full_nse_eq_depth5')
    ltpc_entry = encode('FeedResponse', {'type': 'live_feed', 'feeds': {RELIANCE: {'ltpc': {'ltp': 2950.55, 'ltq': 25}}}})
    # LTPC with unknown fields 9 (varint), 10 (length-delimited), 11 (fixed64), 12 (fixed32).
    unknown_ltpc = (encode_scalar(1, 'double', 2950.55) + tag(9, 0) + varint(12345) + length_delimited(10, b'future')
                    + tag(11, 1) + b'\x01' * 8 + tag(12, 5) + b'\x02' * 4 + encode_scalar(3, 'int64', 25))
    unknown_feed = length_delimited(2, encode_scalar(1, 'string', RELIANCE) + length_delimited(2, length_delimited(1, unknown_ltpc)))
    yield ('unknown_fields_skipped', 'wire', tag(1, 0) + varint(1) + unknown_feed + tag(99, 0) + varint(7),
           {'note': 'Unknown field numbers at every wire type, in LTPC and in FeedResponse: skipped by the SDK.'}, True)
    # LTPC.ltp (a double, wire type 1) sent as a varint.
    wrong = length_delimited(2, encode_scalar(1, 'string', RELIANCE) + length_delimited(2, length_delimited(1, tag(1, 0) + varint(2950) + encode_scalar(3, 'int64', 25))))
    yield ('wrong_wire_type_ltp_as_varint', 'wire', tag(1, 0) + varint(1) + wrong,
           {'note': 'LTPC.ltp with wire type 0: the SDK keeps it as an unknown field and prints no ltp. tickcast reports the frame invalid (a known field with the wrong wire type is corruption, not a newer schema).',
            'tickcast': 'invalid'}, True)
    # The same singular message field twice in one Feed: the two are merged.
    first = length_delimited(2, length_delimited(1, length_delimited(1, encode_scalar(1, 'double', 2950.55) + encode_scalar(2, 'int64', LTT))))
    second = length_delimited(2, length_delimited(1, length_delimited(1, encode_scalar(3, 'int64', 7)) + encode_scalar(6, 'int64', 100)))
    merged = length_delimited(2, encode_scalar(1, 'string', RELIANCE) + length_delimited(2, first + second + encode_scalar(4, 'enum:RequestMode', 'full_d5')))
    yield ('merged_submessage', 'wire', tag(1, 0) + varint(1) + merged,
           {'note': 'fullFeed twice in one Feed, each with part of the LTPC: protobuf merges them (ltp, ltt from the first, ltq and vtt from the second).'}, True)
    yield ('empty_frame', 'wire', b'', {'note': 'Zero bytes are a valid, empty FeedResponse.'}, True)
    yield ('truncated_full', 'damaged', full[:len(full) // 2], {'note': 'The depth-5 frame cut in half.', 'tickcast': 'invalid'}, False)
    yield ('truncated_varint', 'damaged', ltpc_entry[:1] + b'\x80', {'note': 'A varint whose continuation bit runs off the end.', 'tickcast': 'invalid'}, False)
    bad_key = length_delimited(2, length_delimited(1, b'NSE_EQ|\xff\xfe') + length_delimited(2, length_delimited(1, encode_scalar(1, 'double', 1.5))))
    yield ('invalid_utf8_key', 'damaged', bad_key, {'note': 'A map key that is not UTF-8.', 'tickcast': 'invalid'}, False)
    yield ('group_wire_type', 'damaged', tag(1, 0) + varint(1) + tag(20, 3) + tag(20, 4),
           {'note': 'An unknown field as a (proto2) group, wire types 3/4: the SDK skips it; tickcast reports it invalid (proto3 has no groups).', 'tickcast': 'invalid'}, True)
    yield ('reserved_wire_type', 'damaged', tag(1, 0) + varint(1) + bytes([(5 << 3) | 6]) + b'\x00',
           {'note': 'Wire type 6 does not exist.', 'tickcast': 'invalid'}, False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('sdk', help='a checkout of github.com/upstox/upstox-python')
    parser.add_argument('--commit', help='the checkout\'s commit (default: git rev-parse HEAD in it)')
    parser.add_argument('--out', help='write the vectors here (default: stdout)')
    args = parser.parse_args()
    root = os.path.abspath(args.sdk)

    commit = args.commit
    if not commit:
        try:
            commit = subprocess.run(['git', '-C', root, 'rev-parse', 'HEAD'], capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            commit = 'unknown'
    sources = ['upstox_client/feeder/proto/MarketDataFeedV3.proto', 'upstox_client/feeder/proto/MarketDataFeedV3_pb2.py',
               'upstox_client/feeder/market_data_streamer_v3.py', 'upstox_client/feeder/market_data_feeder_v3.py',
               'upstox_client/feeder/streamer.py', 'upstox_client/feeder/feeder.py', 'upstox_client/configuration.py']
    blobs = {path: blob_sha1(open(os.path.join(root, path), 'rb').read()) for path in sources}

    streamer_module, api = load_sdk(root)
    import google.protobuf
    from google.protobuf.internal import api_implementation
    provenance = {'repository': 'upstox/upstox-python', 'commit': commit, 'blobs': blobs,
                  'protobuf': '%s (%s)' % (google.protobuf.__version__, api_implementation.Type())}

    entries = []
    built = {}
    failures = []

    def add(name, kind, frame, note, inp, expect_dict, known_difference=None):
        result = official_decode(streamer_module, api, frame)
        entry = {'name': 'upstox/' + name, 'kind': kind, 'direction': 'server->client', 'frame': 'binary', 'hex': frame.hex()}
        entry.update(result)
        if inp is not None:
            entry['input'] = inp
        if note:
            entry['note'] = note
        if known_difference:
            entry['tickcast'] = known_difference
        if expect_dict is not None and result.get('decoded') != expect_dict:
            failures.append('%s: SDK %s, expected %s' % (name, json.dumps(result), json.dumps(expect_dict)))
        entries.append(entry)

    for name, kind, inp, note, *_ in frames():
        if isinstance(inp, list):  # a sequence of (field, value) written in that order
            frame = b''.join(encode('FeedResponse', {field: value}) for field, value in inp)
            want = {}
            for field, value in inp:
                part = expected('FeedResponse', {field: value})
                if field == 'feeds':
                    want.setdefault('feeds', {}).update(part.get('feeds', {}))
                else:
                    want.pop(field, None)
                    want.update(part)
            record = [[field, value] for field, value in inp]
        else:
            frame = encode('FeedResponse', inp)
            want = expected('FeedResponse', inp)
            record = inp
        built[name] = frame
        add(name, kind, frame, note, record, want)

    for name, kind, frame, extra, parses in raw_frames(lambda n: built[n]):
        result = official_decode(streamer_module, api, frame)
        if parses != ('decoded' in result):
            failures.append('%s: expected the SDK to %s, got %s' % (name, 'parse it' if parses else 'refuse it', json.dumps(result)))
        add(name, kind, frame, extra.get('note'), None, None, extra.get('tickcast'))

    entries.extend(requests(streamer_module, api))

    if failures:
        sys.stderr.write('self-check failed:\n  ' + '\n  '.join(failures) + '\n')
        sys.exit(1)
    text = json.dumps(entries, indent=1, ensure_ascii=False) + '\n'
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    sys.stderr.write('%d entries; provenance %s\n' % (len(entries), json.dumps(provenance)))


def requests(streamer_module, api):
    """What the SDK sends, through the stand-in socket."""
    entries = []
    errors = []

    def capture(name, call, action, note=None):
        before = len(SENT)
        opened_before = len(OPENED)
        action()
        sent = SENT[before:]
        if len(OPENED) > opened_before:
            for opened in OPENED[opened_before:]:
                entries.append({'name': 'upstox/' + name, 'kind': 'request', 'direction': 'client->server', 'frame': 'handshake',
                                'call': call, 'url': opened['url'], 'headers': opened['header'],
                                'note': 'The WebSocket upgrade the SDK makes (access token ACCESS_TOKEN).'})
        if not sent and len(OPENED) == opened_before:
            entry = {'name': 'upstox/' + name, 'kind': 'request', 'direction': 'client->server', 'frame': None, 'call': call, 'sent': 0}
            if errors:
                entry['error_event'] = str(errors.pop())
            if note:
                entry['note'] = note
            entries.append(entry)
        for i, (opcode, data) in enumerate(sent):
            entry = {'name': 'upstox/' + name + ('' if len(sent) == 1 else '_%d' % (i + 1)), 'kind': 'request',
                     'direction': 'client->server', 'frame': 'binary' if opcode == 0x2 else 'text', 'opcode': opcode,
                     'call': call, 'hex': data.hex(), 'text': data.decode('utf-8'), 'decoded': json.loads(data)}
            if note:
                entry['note'] = note
            entries.append(entry)

    streamer = streamer_module.MarketDataStreamerV3(api, [RELIANCE, NIFTY], 'full')
    streamer.on('error', errors.append)
    capture('connect', "MarketDataStreamerV3(api, [RELIANCE, NIFTY], 'full').connect()", streamer.connect)
    capture('open_initial_subscribe', 'handle_open (the socket opened)', lambda: streamer.handle_open(streamer.feeder.ws),
            'On open the streamer subscribes the constructor keys, one message per mode.')
    capture('subscribe_ltpc', "subscribe([INFY], 'ltpc')", lambda: streamer.subscribe([INFY], 'ltpc'))
    capture('subscribe_option_greeks', "subscribe([NIFTY_CE], 'option_greeks')", lambda: streamer.subscribe([NIFTY_CE], 'option_greeks'))
    capture('subscribe_full_d30', "subscribe([INFY], 'full_d30')", lambda: streamer.subscribe([INFY], 'full_d30'),
            'INFY is now in both ltpc and full_d30 in the streamer\'s own bookkeeping.')
    capture('change_mode_full', "change_mode([INFY, NIFTY_CE], 'full')", lambda: streamer.change_mode([INFY, NIFTY_CE], 'full'))
    capture('unsubscribe', 'unsubscribe([NIFTY])', lambda: streamer.unsubscribe([NIFTY]), 'unsub carries no mode.')
    capture('subscribe_invalid_mode', "subscribe([INFY], 'full_d5')", lambda: streamer.subscribe([INFY], 'full_d5'),
            'full_d5 is the RequestMode enum name, not a subscription mode: the streamer emits an error and sends nothing.')
    capture('reopen_resubscribe', 'handle_open again (auto-reconnect)', lambda: streamer.handle_open(streamer.feeder.ws),
            'After a reconnect the streamer re-sends every subscription, one message per mode (keys in set order).')
    capture('feeder_subscribe_without_mode', 'MarketDataFeederV3.subscribe([RELIANCE]) with no mode',
            lambda: streamer.feeder.subscribe([RELIANCE]), 'Without a mode the request has none; the server then uses ltpc.')
    return entries


if __name__ == '__main__':
    main()
