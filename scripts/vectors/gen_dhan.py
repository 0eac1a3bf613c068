#!/usr/bin/python3
"""Dhan live-feed test vectors (test/fixtures/vectors/dhan.json).

Usage:  /usr/bin/python3 scripts/vectors/gen_dhan.py CHECKOUT [OUT]

CHECKOUT is a checkout of Dhan's official Python library (github.com/dhan-oss/DhanHQ-py);
OUT defaults to test/fixtures/vectors/dhan.json. Standard library only.

The method (test/fixtures/vectors/README.md):
1. Frames are packed here from the documented layouts (docs/brokers/dhan.md), from chosen
   values kept in each entry's `input`. Nothing is taken from the library to build them.
2. They are decoded by the library's own modules, `src/dhanhq/marketfeed.py` (5-level feed) and
   `src/dhanhq/fulldepth.py` (20-level depth), loaded unmodified from CHECKOUT. `websockets` is
   replaced by an inert stand-in when it is not installed, and `websockets.connect` always is
   (inside the loaded module's namespace only), so nothing connects anywhere.
3. The JSON (and binary) messages the official clients send are captured through a stand-in
   socket.
4. Every decoded vector is checked against its input; a disagreement fails the run.

The library collects instruments in a Python set before batching, so the order of instruments
inside one subscription message follows string hashing; the script re-runs itself with
PYTHONHASHSEED=0 so the captured order is reproducible (it carries no meaning).
"""
import asyncio
import calendar
import contextlib
import hashlib
import importlib.util
import io
import json
import os
import struct
import subprocess
import sys
import types

if os.environ.get('PYTHONHASHSEED') != '0':
    os.environ['PYTHONHASHSEED'] = '0'
    os.execv(sys.executable, [sys.executable] + sys.argv)

IST_OFFSET_S = 19800
SEGMENTS = {'IDX_I': 0, 'NSE_EQ': 1, 'NSE_FNO': 2, 'NSE_CURRENCY': 3, 'BSE_EQ': 4, 'MCX_COMM': 5, 'BSE_CURRENCY': 7, 'BSE_FNO': 8}
CLIENT_ID = '1000000001'
ACCESS_TOKEN = 'ACCESS_TOKEN'


# --------------------------------------------------------------------------- the official modules

class _State:
    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


def _install_websockets_stand_in():
    """An inert `websockets` for the modules' import, only when the real one is absent."""
    try:
        import websockets  # noqa: F401
        return 'installed'
    except ImportError:
        pass
    module = types.ModuleType('websockets')
    protocol = types.ModuleType('websockets.protocol')
    protocol.State = _State
    module.protocol = protocol

    class ConnectionClosed(Exception):
        pass

    async def connect(*_args, **_kwargs):
        raise RuntimeError('network disabled')

    module.ConnectionClosed = ConnectionClosed
    module.connect = connect
    sys.modules['websockets'] = module
    sys.modules['websockets.protocol'] = protocol
    return 'stand-in'


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _git_blob(data):
    return hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()


class Context:
    def get_client_id(self):
        return CLIENT_ID

    def get_access_token(self):
        return ACCESS_TOKEN


class StandInSocket:
    """Records what the client sends; `recv` hands out queued frames."""

    def __init__(self, frames=()):
        self.sent = []
        self.frames = list(frames)
        self.closed = False
        self.state = sys.modules['websockets'].protocol.State.OPEN

    async def send(self, message):
        self.sent.append(message)

    async def recv(self):
        return self.frames.pop(0)

    async def ping(self):
        return None

    async def close(self):
        self.closed = True
        self.state = sys.modules['websockets'].protocol.State.CLOSED


# --------------------------------------------------------------------------- frame builders
# Independent of the library: the documented layouts (docs/brokers/dhan.md), little-endian.

def f32(text):
    return struct.unpack('<f', struct.pack('<f', float(text)))[0]


def header(code, length, segment, security_id):
    return struct.pack('<BHBI', code, length, segment, security_id)


def ticker(code, segment, security_id, ltp, ltt):
    return header(code, 16, segment, security_id) + struct.pack('<fI', float(ltp), ltt)


def quote(v):
    body = struct.pack('<fHIfIIIffff', float(v['ltp']), v['ltq'], v['ltt'], float(v['atp']), v['volume'],
                       v['total_sell_quantity'], v['total_buy_quantity'],
                       float(v['open']), float(v['close']), float(v['high']), float(v['low']))
    return header(4, 50, v['segment'], v['security_id']) + body


def depth5(levels):
    out = b''
    for i in range(5):
        lv = levels[i] if i < len(levels) else {'bid_quantity': 0, 'ask_quantity': 0, 'bid_orders': 0, 'ask_orders': 0, 'bid_price': '0', 'ask_price': '0'}
        out += struct.pack('<IIHHff', lv['bid_quantity'], lv['ask_quantity'], lv['bid_orders'], lv['ask_orders'],
                           float(lv['bid_price']), float(lv['ask_price']))
    return out


def full(v):
    body = struct.pack('<fHIfIIIIIIffff', float(v['ltp']), v['ltq'], v['ltt'], float(v['atp']), v['volume'],
                       v['total_sell_quantity'], v['total_buy_quantity'], v['oi'], v['oi_day_high'], v['oi_day_low'],
                       float(v['open']), float(v['close']), float(v['high']), float(v['low']))
    return header(8, 162, v['segment'], v['security_id']) + body + depth5(v['depth'])


def oi_packet(segment, security_id, oi):
    return header(5, 12, segment, security_id) + struct.pack('<I', oi)


def status_packet(segment, security_id):
    return header(7, 8, segment, security_id)


def disconnect_packet(reason):
    return header(50, 10, 0, 0) + struct.pack('<H', reason)


def depth20_packet(code, segment, security_id, sequence, levels):
    body = b''
    for i in range(20):
        price, quantity, orders = levels[i] if i < len(levels) else ('0', 0, 0)
        body += struct.pack('<dII', float(price), quantity, orders)
    return struct.pack('<HBBiI', 12 + len(body), code, segment, security_id, sequence) + body


def depth20_disconnect(reason):
    # Twelve bytes: the 20-depth header, the reason where the sequence would be.
    return struct.pack('<HBBiI', 12, 50, 0, 0, reason)


def ist_epoch(y, mo, d, h, mi, s):
    """Dhan's LTT: the IST wall-clock time written as if it were UTC (docs/brokers/dhan.md)."""
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))


LTT = ist_epoch(2024, 6, 12, 15, 29, 59)


def ladder(start, step, count, quantity, orders, decimals=2):
    out = []
    for i in range(count):
        price = round(float(start) + step * i, decimals)
        out.append((('%.' + str(decimals) + 'f') % price, quantity + 25 * i, orders + i))
    return out


# --------------------------------------------------------------------------- the vectors

def build(checkout):
    src = os.path.join(checkout, 'src', 'dhanhq')
    mf_path = os.path.join(src, 'marketfeed.py')
    fd_path = os.path.join(src, 'fulldepth.py')
    ws_mode = _install_websockets_stand_in()
    marketfeed = _load(mf_path, 'dhanhq_marketfeed_official')
    fulldepth = _load(fd_path, 'dhanhq_fulldepth_official')

    entries = []
    failures = []

    def check(name, cond, what):
        if not cond:
            failures.append('%s: %s' % (name, what))

    def new_feed(instruments=()):
        return marketfeed.MarketFeed(Context(), list(instruments), 'v2')

    def run_quiet(fn):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            result = fn()
        return result, out.getvalue()

    def add_feed_frame(name, frame, input_, note=None):
        feed = new_feed()
        decoded, printed = run_quiet(lambda: feed.process_data(frame))
        entry = {'name': 'dhan/' + name, 'feed': 'marketfeed', 'frame': 'binary', 'direction': 'server->client',
                 'hex': frame.hex(), 'length': len(frame), 'decoded': decoded, 'input': input_}
        if printed:
            entry['printed'] = printed
        if note:
            entry['note'] = note
        entries.append(entry)
        return decoded

    def fmt(text):
        return '{:.2f}'.format(f32(text))

    def hms(ltt):
        import datetime
        return datetime.datetime.fromtimestamp(ltt, datetime.timezone.utc).strftime('%H:%M:%S')

    # ---- ticker (2)
    tickers = [
        ('ticker_nse_eq_reliance', 'NSE_EQ', 2885, '2950.55', LTT, None),
        ('ticker_idx_nifty50', 'IDX_I', 13, '23264.85', LTT, 'An index: segment IDX_I (0); NIFTY 50 is security 13.'),
        ('ticker_bse_eq_reliance', 'BSE_EQ', 500325, '2950.6', LTT, None),
        ('ticker_nse_fno_nifty_fut', 'NSE_FNO', 35001, '23310.4', LTT, 'Illustrative security id.'),
        ('ticker_mcx_crudeoil_fut', 'MCX_COMM', 430106, '6512', LTT, 'Illustrative security id.'),
        ('ticker_nse_currency_usdinr_fut', 'NSE_CURRENCY', 10093, '83.4525', LTT,
         'Currency prices have 4 decimals (tick 0.0025); the library formats every price with 2, so its LTP reads 83.45.'),
        ('ticker_no_trade_time', 'NSE_EQ', 1333, '1650.05', 0, 'LTT 0: no trade yet. The library prints it as 00:00:00.'),
    ]
    for name, seg, sid, ltp, ltt, note in tickers:
        frame = ticker(2, SEGMENTS[seg], sid, ltp, ltt)
        d = add_feed_frame(name, frame, {'response_code': 2, 'exchange_segment': SEGMENTS[seg], 'segment_name': seg,
                                         'security_id': sid, 'ltp': ltp, 'ltt': ltt}, note)
        check(name, d == {'type': 'Ticker Data', 'exchange_segment': SEGMENTS[seg], 'security_id': sid,
                          'LTP': fmt(ltp), 'LTT': hms(ltt)}, d)

    # ---- quote (4)
    quotes = [
        ('quote_nse_eq_reliance', dict(segment=1, security_id=2885, ltp='2950.55', ltq=25, ltt=LTT, atp='2938.4', volume=5123456,
                                       total_sell_quantity=812345, total_buy_quantity=654321, open='2925', close='2921.15',
                                       high='2962.5', low='2915.1'), None),
        ('quote_idx_banknifty', dict(segment=0, security_id=25, ltp='49895.3', ltq=0, ltt=LTT, atp='0', volume=0,
                                     total_sell_quantity=0, total_buy_quantity=0, open='49700.05', close='49650.7',
                                     high='50012.9', low='49655.25'),
         'An index in quote mode: quantities, volume and average price are zero, which means absent.'),
        ('quote_nse_fno_banknifty_option', dict(segment=2, security_id=46923, ltp='312.45', ltq=15, ltt=LTT, atp='298.1',
                                                volume=48213600, total_sell_quantity=301245, total_buy_quantity=287400,
                                                open='265', close='280.35', high='344.9', low='251.05'), 'Illustrative security id.'),
        ('quote_bse_currency_eurinr_fut', dict(segment=7, security_id=8801, ltp='90.1275', ltq=1, ltt=LTT, atp='90.1132',
                                               volume=5123, total_sell_quantity=812, total_buy_quantity=930, open='90.05',
                                               close='90.0025', high='90.15', low='90.0375'),
         'Currency: 4 decimals on the wire, 2 in the library\'s strings. Illustrative security id.'),
        ('quote_nse_eq_price_above_2pow17', dict(segment=1, security_id=2277, ltp='140000.1', ltq=1, ltt=LTT, atp='139850.35',
                                                 volume=10412, total_sell_quantity=1201, total_buy_quantity=987, open='139500',
                                                 close='139420.55', high='140250.45', low='139300.05'),
         'Above 131072 a float32 steps by 1/64 rupee: 140000.10 arrives as 140000.09375, so the library (and any decoder) '
         'reads 140000.09. The feed cannot say better; the input shows what was meant.'),
    ]
    for name, v, note in quotes:
        frame = quote(v)
        d = add_feed_frame(name, frame, dict(response_code=4, **v), note)
        check(name, d is not None and d['LTP'] == fmt(v['ltp']) and d['LTQ'] == v['ltq'] and d['volume'] == v['volume']
              and d['total_buy_quantity'] == v['total_buy_quantity'] and d['total_sell_quantity'] == v['total_sell_quantity']
              and d['open'] == fmt(v['open']) and d['close'] == fmt(v['close']) and d['high'] == fmt(v['high'])
              and d['low'] == fmt(v['low']) and d['avg_price'] == fmt(v['atp']) and d['LTT'] == hms(v['ltt'])
              and d['security_id'] == v['security_id'] and d['exchange_segment'] == v['segment'], d)

    # ---- OI (5), previous close (6), market status (7)
    d = add_feed_frame('oi_nse_fno_nifty_fut', oi_packet(2, 35001, 12345600),
                       {'response_code': 5, 'exchange_segment': 2, 'security_id': 35001, 'oi': 12345600},
                       'Sent with Quote subscriptions of derivatives (the quote packet has no OI).')
    check('oi', d == {'type': 'OI Data', 'exchange_segment': 2, 'security_id': 35001, 'OI': 12345600}, d)
    for name, seg, sid, close, prev_oi in [('prev_close_nse_eq_reliance', 1, 2885, '2921.15', 0),
                                           ('prev_close_nse_fno_nifty_fut', 2, 35001, '23300.5', 11223300)]:
        frame = header(6, 16, seg, sid) + struct.pack('<fI', float(close), prev_oi)
        d = add_feed_frame(name, frame, {'response_code': 6, 'exchange_segment': seg, 'security_id': sid,
                                         'prev_close': close, 'prev_oi': prev_oi},
                           'Sent once on subscription, whatever the mode.')
        check(name, d == {'type': 'Previous Close', 'exchange_segment': seg, 'security_id': sid,
                          'prev_close': fmt(close), 'prev_OI': prev_oi}, d)
    d = add_feed_frame('market_status', status_packet(0, 0), {'response_code': 7, 'exchange_segment': 0, 'security_id': 0},
                       'The body is undocumented; the library ignores the packet and returns the string "Markets Open" '
                       'for any status packet.')
    check('status', d == 'Markets Open', d)

    # ---- full (8)
    fulls = [
        ('full_nse_fno_nifty_fut', dict(segment=2, security_id=35001, ltp='23310.4', ltq=25, ltt=LTT, atp='23288.65',
                                        volume=4123400, total_sell_quantity=512300, total_buy_quantity=498750,
                                        oi=12345600, oi_day_high=12500000, oi_day_low=11900025, open='23250',
                                        close='23300.5', high='23345.95', low='23221.05',
                                        depth=[dict(bid_quantity=150 + 25 * i, ask_quantity=175 + 25 * i, bid_orders=3 + i,
                                                    ask_orders=4 + i, bid_price='%.2f' % (23310.05 - 0.05 * i),
                                                    ask_price='%.2f' % (23310.4 + 0.05 * i)) for i in range(5)]),
         'Illustrative security id.'),
        ('full_nse_eq_partial_book', dict(segment=1, security_id=2885, ltp='2950.55', ltq=3, ltt=LTT, atp='2938.4',
                                          volume=5123456, total_sell_quantity=812345, total_buy_quantity=654321,
                                          oi=0, oi_day_high=0, oi_day_low=0, open='2925', close='2921.15',
                                          high='2962.5', low='2915.1',
                                          depth=[dict(bid_quantity=120, ask_quantity=80, bid_orders=4, ask_orders=2,
                                                      bid_price='2950.5', ask_price='2950.55'),
                                                 dict(bid_quantity=300, ask_quantity=410, bid_orders=9, ask_orders=11,
                                                      bid_price='2950.45', ask_price='2950.6'),
                                                 dict(bid_quantity=45, ask_quantity=0, bid_orders=1, ask_orders=0,
                                                      bid_price='2950.4', ask_price='0')]),
         'A thin book: 3 bid and 2 ask levels; empty levels are zeros. Equity has no OI (zero).'),
        ('full_mcx_crudeoil_fut', dict(segment=5, security_id=430106, ltp='6512', ltq=1, ltt=LTT, atp='6498.37',
                                       volume=18450, total_sell_quantity=2210, total_buy_quantity=1984,
                                       oi=10234, oi_day_high=10500, oi_day_low=9870, open='6480', close='6475',
                                       high='6530', low='6466',
                                       depth=[dict(bid_quantity=2 + i, ask_quantity=3 + i, bid_orders=1 + i, ask_orders=2 + i,
                                                   bid_price=str(6511 - i), ask_price=str(6512 + i)) for i in range(5)]),
         'Illustrative security id.'),
        ('full_nse_currency_usdinr_fut', dict(segment=3, security_id=10093, ltp='83.4525', ltq=10, ltt=LTT, atp='83.4412',
                                              volume=912345, total_sell_quantity=81200, total_buy_quantity=79150,
                                              oi=2345678, oi_day_high=2400000, oi_day_low=2300100, open='83.41',
                                              close='83.405', high='83.4675', low='83.4',
                                              depth=[dict(bid_quantity=1000 * (i + 1), ask_quantity=1100 * (i + 1),
                                                          bid_orders=5 + i, ask_orders=6 + i,
                                                          bid_price='%.4f' % (83.45 - 0.0025 * i),
                                                          ask_price='%.4f' % (83.4525 + 0.0025 * i)) for i in range(5)]),
         'Currency: 4-decimal prices, which the library formats with 2. Illustrative security id.'),
    ]
    for name, v, note in fulls:
        frame = full(v)
        d = add_feed_frame(name, frame, dict(response_code=8, **v), note)
        ok = d is not None and d['LTP'] == fmt(v['ltp']) and d['OI'] == v['oi'] and d['oi_day_high'] == v['oi_day_high'] \
            and d['oi_day_low'] == v['oi_day_low'] and d['volume'] == v['volume'] and d['open'] == fmt(v['open']) \
            and d['close'] == fmt(v['close']) and d['high'] == fmt(v['high']) and d['low'] == fmt(v['low']) \
            and d['LTQ'] == v['ltq'] and d['avg_price'] == fmt(v['atp']) \
            and d['total_buy_quantity'] == v['total_buy_quantity'] and d['total_sell_quantity'] == v['total_sell_quantity']
        for i in range(5):
            lv = v['depth'][i] if i < len(v['depth']) else None
            got = d['depth'][i]
            if lv is None:
                ok = ok and got['bid_quantity'] == 0 and got['ask_quantity'] == 0 and got['bid_price'] == '0.00'
            else:
                ok = ok and got['bid_quantity'] == lv['bid_quantity'] and got['ask_quantity'] == lv['ask_quantity'] \
                    and got['bid_orders'] == lv['bid_orders'] and got['ask_orders'] == lv['ask_orders'] \
                    and got['bid_price'] == fmt(lv['bid_price']) and got['ask_price'] == fmt(lv['ask_price'])
        check(name, ok, d)

    # ---- feed disconnect (50), several packets in one message, an unknown code
    for reason, text in [(805, 'No. of active websocket connections exceeded'), (807, 'Access Token is expired')]:
        name = 'disconnect_%d' % reason
        d = add_feed_frame(name, disconnect_packet(reason), {'response_code': 50, 'exchange_segment': 0, 'security_id': 0,
                                                             'reason': reason},
                           'The library prints the reason and returns None.')
        check(name, d is None and text in entries[-1].get('printed', ''), entries[-1].get('printed'))
    multi_parts = [ticker(2, 1, 2885, '2950.55', LTT), header(6, 16, 1, 2885) + struct.pack('<fI', 2921.15, 0),
                   oi_packet(2, 35001, 12345600)]
    d = add_feed_frame('multi_packet_ticker_prevclose_oi', b''.join(multi_parts),
                       {'packets': [{'response_code': 2, 'exchange_segment': 1, 'security_id': 2885, 'ltp': '2950.55', 'ltt': LTT},
                                    {'response_code': 6, 'exchange_segment': 1, 'security_id': 2885, 'prev_close': '2921.15', 'prev_oi': 0},
                                    {'response_code': 5, 'exchange_segment': 2, 'security_id': 35001, 'oi': 12345600}]},
                       'Three packets in one message, each with its own length. The library decodes only the first '
                       '(process_data reads from byte 0); OpenAlgo walks them by the length field. Whether Dhan stacks '
                       'packets on this feed is not documented; a decoder must handle both.')
    check('multi', d == {'type': 'Ticker Data', 'exchange_segment': 1, 'security_id': 2885, 'LTP': '2950.55', 'LTT': hms(LTT)}, d)
    d = add_feed_frame('unknown_response_code_99', header(99, 16, 1, 2885) + b'\0' * 8,
                       {'response_code': 99, 'exchange_segment': 1, 'security_id': 2885},
                       'Not a documented code: the library returns None.')
    check('unknown', d is None, d)

    # ---- 20-level depth (41 bid, 51 ask) on its own endpoint
    def add_depth_frame(name, frame, input_, note=None):
        # Each packet as the library's async reader yields them (process_data until exhausted) ...
        reader = fulldepth.FullDepth(Context(), [], 20)
        packets = []
        printed_all = ''
        remaining = frame
        while remaining:
            update, printed = run_quiet(lambda: reader.process_data(remaining))
            printed_all += printed
            if not update:
                break
            remaining = update.pop('remaining_data', None)
            packets.append(update)
        # ... and the bid/ask pairs its blocking reader (get_data) combines, from a stand-in socket.
        combiner = fulldepth.FullDepth(Context(), [], 20)
        combiner.ws = StandInSocket([frame])
        combiner.on_ticks = lambda _data: None
        combined, printed = run_quiet(combiner.get_data)
        entry = {'name': 'dhan/' + name, 'feed': 'depth20', 'frame': 'binary', 'direction': 'server->client',
                 'hex': frame.hex(), 'length': len(frame),
                 'decoded': {'packets': packets, 'get_data': combined, 'on_close': reader.on_close}, 'input': input_}
        if printed_all:
            entry['printed'] = printed_all
        if note:
            entry['note'] = note
        entries.append(entry)
        return entry['decoded']

    def side_input(code, seg, sid, seq, levels):
        return {'response_code': code, 'exchange_segment': seg, 'security_id': sid, 'sequence': seq,
                'levels': [{'price': p, 'quantity': q, 'orders': o} for p, q, o in levels]}

    def check_depth_packets(name, packets, inputs):
        ok = len(packets) == len(inputs)
        for got, want in zip(packets, inputs):
            ok = ok and got['security_id'] == want['security_id'] and got['exchange_segment'] == want['exchange_segment'] \
                and got['type'] == ('Bid' if want['response_code'] == 41 else 'Ask') and len(got['depth']) == 20
            for i, level in enumerate(got['depth']):
                w = want['levels'][i] if i < len(want['levels']) else {'price': '0', 'quantity': 0, 'orders': 0}
                ok = ok and level['price'] == float(w['price']) and level['quantity'] == w['quantity'] and level['orders'] == w['orders']
        check(name, ok, packets)

    bids = ladder('2950.5', -0.05, 20, 100, 2)
    asks = ladder('2950.55', 0.05, 20, 90, 1)
    bid_in = side_input(41, 1, 2885, 7001, bids)
    ask_in = side_input(51, 1, 2885, 7002, asks)
    bid_frame = depth20_packet(41, 1, 2885, 7001, bids)
    ask_frame = depth20_packet(51, 1, 2885, 7002, asks)
    d = add_depth_frame('depth20_bid_nse_eq_reliance', bid_frame, {'packets': [bid_in]},
                        'One bid packet alone: the library yields it, but get_data pairs only a bid with an ask.')
    check_depth_packets('depth20_bid', d['packets'], [bid_in])
    d = add_depth_frame('depth20_ask_nse_eq_reliance', ask_frame, {'packets': [ask_in]})
    check_depth_packets('depth20_ask', d['packets'], [ask_in])
    d = add_depth_frame('depth20_pair_nse_eq_reliance', bid_frame + ask_frame, {'packets': [bid_in, ask_in]},
                        'Bid and ask of one instrument in one message: the library combines them into display lines.')
    check_depth_packets('depth20_pair', d['packets'], [bid_in, ask_in])
    check('depth20_pair_combined', d['get_data'] is not None and len(d['get_data']) == 1 and len(d['get_data'][0]['depth']) == 20,
          d['get_data'])

    fno_bids = ladder('23310.05', -0.05, 20, 75, 3)
    fno_asks = ladder('23310.4', 0.05, 8, 50, 1)
    fno_bid_in = side_input(41, 2, 35001, 9001, fno_bids)
    fno_ask_in = side_input(51, 2, 35001, 9002, fno_asks)
    d = add_depth_frame('depth20_pair_nse_fno_partial_asks',
                        depth20_packet(41, 2, 35001, 9001, fno_bids) + depth20_packet(51, 2, 35001, 9002, fno_asks),
                        {'packets': [fno_bid_in, fno_ask_in]},
                        'Only 8 ask levels; the other 12 are zeros. The library keeps the zero levels, and get_data '
                        'sorts asks by ascending price, so its combined lines start with 12 asks at price 0.00.')
    check_depth_packets('depth20_partial', d['packets'], [fno_bid_in, fno_ask_in])
    check('depth20_partial_sorted', d['get_data'] is not None and d['get_data'][0]['depth'][0].startswith('bid : {price:23310.05')
          and 'ask : {price:0.00' in d['get_data'][0]['depth'][0], d['get_data'])

    tcs_bids = ladder('3890.1', -0.1, 20, 10, 1)
    tcs_asks = ladder('3890.2', 0.1, 20, 12, 1)
    parts = [(41, 1, 11536, 501, tcs_bids), (51, 1, 11536, 502, tcs_asks), (41, 2, 35001, 9003, fno_bids),
             (51, 2, 35001, 9004, ladder('23310.4', 0.05, 20, 50, 1))]
    inputs = [side_input(*p) for p in parts]
    d = add_depth_frame('depth20_two_instruments', b''.join(depth20_packet(*p) for p in parts), {'packets': inputs},
                        'Two instruments, bid then ask each, in one message.')
    check_depth_packets('depth20_two', d['packets'], inputs)
    check('depth20_two_combined', d['get_data'] is not None and len(d['get_data']) == 2, d['get_data'])

    d = add_depth_frame('depth20_disconnect_807', depth20_disconnect(807),
                        {'packets': [{'response_code': 50, 'exchange_segment': 0, 'security_id': 0, 'reason': 807}]},
                        'A disconnect on the 20-depth feed: the library reads the reason as the u32 at bytes 8-11 '
                        '(where data packets carry the sequence), prints it and sets on_close.')
    check('depth20_disconnect', d['packets'] == [] and d['on_close'] is True and 'Access Token is expired' in entries[-1].get('printed', ''), d)

    # ---- messages to Dhan, captured from the official clients
    def add_sent(name, feed, sent, note=None, extra=None):
        for i, message in enumerate(sent):
            entry = {'name': 'dhan/' + name + ('#%d' % i if len(sent) > 1 else ''), 'feed': feed,
                     'frame': 'text' if isinstance(message, str) else 'binary', 'direction': 'client->server',
                     'hex': (message.encode() if isinstance(message, str) else message).hex()}
            if isinstance(message, str):
                entry['text'] = message
            if note:
                entry['note'] = note
            if extra:
                entry.update(extra)
            entries.append(entry)

    def connect_capture(module, client):
        urls = []

        async def fake_connect(url, *args, **kwargs):
            urls.append(url)
            return StandInSocket()

        saved = module.websockets.connect
        module.websockets.connect = fake_connect
        try:
            run_quiet(lambda: client.loop.run_until_complete(client.connect()))
        finally:
            module.websockets.connect = saved
        return urls

    instruments = [(1, '2885', 15), (0, '13', 15), (2, '35001', 21), (1, '1333', 17), (4, '500325', 17)]
    feed = new_feed(instruments)
    urls = connect_capture(marketfeed, feed)
    add_sent('request_subscribe_on_connect', 'marketfeed', list(feed.ws.sent),
             'Sent by MarketFeed.connect (v2) right after the socket opens: one message per request code, '
             'codes in the order 15, 17, 21. Instrument order inside a message follows a Python set.',
             {'url': urls[0]})
    feed.ws.sent.clear()
    run_quiet(lambda: feed.subscribe_symbols([(3, '10093', 17), (5, '430106', 21)]))
    feed.loop.run_until_complete(asyncio.sleep(0))
    add_sent('request_subscribe_symbols', 'marketfeed', list(feed.ws.sent), 'MarketFeed.subscribe_symbols on an open socket.')
    feed.ws.sent.clear()
    run_quiet(lambda: feed.unsubscribe_symbols([(1, '2885', 15), (1, '1333', 17), (2, '35001', 21)]))
    feed.loop.run_until_complete(asyncio.sleep(0))
    add_sent('request_unsubscribe_symbols', 'marketfeed', list(feed.ws.sent),
             'MarketFeed.unsubscribe_symbols: the subscribe code + 1 (16, 18, 22).')
    feed.ws.sent.clear()
    big = [(1, str(100000 + i), 15) for i in range(101)]
    run_quiet(lambda: feed.subscribe_symbols(big))
    feed.loop.run_until_complete(asyncio.sleep(0))
    counts = [json.loads(m)['InstrumentCount'] for m in feed.ws.sent]
    check('batch', sorted(counts) == [1, 100], counts)
    add_sent('request_subscribe_101_instruments', 'marketfeed', list(feed.ws.sent),
             'At most 100 instruments per message: 101 go out as 100 + 1.')
    feed.ws.sent.clear()
    socket = feed.ws
    run_quiet(lambda: feed.loop.run_until_complete(feed.disconnect()))
    add_sent('request_disconnect', 'marketfeed', list(socket.sent),
             'MarketFeed.disconnect (v2) sends the JSON request 12, then an 83-byte binary v1 header '
             '(<bH30s50s: code 12, length 83, client id, 50 zero bytes), then closes.')

    depth = fulldepth.FullDepth(Context(), [(1, '2885'), (2, '35001')], 20)
    urls = connect_capture(fulldepth, depth)
    add_sent('depth20_request_subscribe_on_connect', 'depth20', list(depth.ws.sent),
             'FullDepth.connect (20 levels): request code 23.', {'url': urls[0]})
    depth.ws.sent.clear()
    run_quiet(lambda: depth.subscribe_symbols([(1, str(200000 + i)) for i in range(51)]))
    depth.loop.run_until_complete(asyncio.sleep(0))
    counts = [json.loads(m)['InstrumentCount'] for m in depth.ws.sent]
    check('depth_batch', sorted(counts) == [1, 50], counts)
    add_sent('depth20_request_subscribe_51_instruments', 'depth20', list(depth.ws.sent),
             'At most 50 instruments per message on the 20-depth feed: 51 go out as 50 + 1.')
    depth.ws.sent.clear()
    run_quiet(lambda: depth.unsubscribe_symbols([(1, '2885')]))
    depth.loop.run_until_complete(asyncio.sleep(0))
    add_sent('depth20_request_unsubscribe', 'depth20', list(depth.ws.sent),
             'FullDepth.unsubscribe_symbols sends 24 (23 + 1); the DhanHQ annexure lists 25 for '
             'unsubscribing full market depth (docs/brokers/dhan.md).')
    depth.ws.sent.clear()
    socket = depth.ws
    run_quiet(lambda: depth.loop.run_until_complete(depth.disconnect()))
    add_sent('depth20_request_disconnect', 'depth20', list(socket.sent),
             'FullDepth.disconnect: JSON request 12 and the binary header, as MarketFeed; the socket is left open.')

    if failures:
        sys.stderr.write('the official library disagrees with the builder:\n  ' + '\n  '.join(map(str, failures)) + '\n')
        sys.exit(1)

    commit = None
    try:
        commit = subprocess.run(['git', '-C', checkout, 'rev-parse', 'HEAD'], capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        pass
    with open(mf_path, 'rb') as fh:
        mf_blob = _git_blob(fh.read())
    with open(fd_path, 'rb') as fh:
        fd_blob = _git_blob(fh.read())
    provenance = {'repository': 'dhan-oss/DhanHQ-py', 'commit': commit,
                  'files': {'src/dhanhq/marketfeed.py': mf_blob, 'src/dhanhq/fulldepth.py': fd_blob},
                  'websockets': ws_mode, 'python': sys.version.split()[0]}
    return entries, provenance


def main():
    if len(sys.argv) < 2:
        sys.stderr.write(__doc__)
        sys.exit(2)
    checkout = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), '..', '..', 'test', 'fixtures', 'vectors', 'dhan.json')
    entries, provenance = build(checkout)
    text = json.dumps(entries, indent=1, ensure_ascii=False) + '\n'
    with open(out, 'w', encoding='utf-8') as fh:
        fh.write(text)
    server = sum(1 for e in entries if e['direction'] == 'server->client')
    sys.stderr.write('%d entries (%d frames from Dhan, %d messages to Dhan) -> %s\nprovenance: %s\nsha256 %s\n' % (
        len(entries), server, len(entries) - server, out, json.dumps(provenance),
        hashlib.sha256(text.encode('utf-8')).hexdigest()))


if __name__ == '__main__':
    main()
