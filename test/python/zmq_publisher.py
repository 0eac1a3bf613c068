"""Publish on a tickcast / OpenAlgo ZeroMQ bus the way OpenAlgo's Python publishers do.

    zmq_publisher.py ENDPOINT [--repeat N] [--gap SECONDS] < messages.jsonl

Each stdin line is a JSON object, either
    {"topic": "NSE_RELIANCE_LTP", "data": {...}}  sent as [topic, json.dumps(data)] (OpenAlgo's framing)
    {"frames": ["a", "b", ...]}                   sent as these UTF-8 frames verbatim (malformed input)
All messages are sent in order, N times, `gap` seconds apart, after a slow-joiner pause. The exact
frames are then echoed on stdout, one {"frames": [...]} line per message, so a caller can compare
bytes. Needs pyzmq (Debian: python3-zmq).
"""
import argparse
import json
import sys
import time

import zmq


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--gap", type=float, default=0.1)
    parser.add_argument("--join-delay", type=float, default=0.3)
    args = parser.parse_args()

    messages = []
    for line in sys.stdin:
        if not line.strip():
            continue
        item = json.loads(line)
        if "frames" in item:
            messages.append([frame.encode("utf-8") for frame in item["frames"]])
        else:
            messages.append([item["topic"].encode("utf-8"), json.dumps(item["data"]).encode("utf-8")])

    # As OpenAlgo's SharedZmqPublisher: a PUB that connects (never binds), LINGER 1000, SNDHWM 1000.
    context = zmq.Context()
    socket = context.socket(zmq.PUB)
    socket.setsockopt(zmq.LINGER, 1000)
    socket.setsockopt(zmq.SNDHWM, 1000)
    socket.connect(args.endpoint)
    time.sleep(args.join_delay)  # slow joiner: messages sent before the handshake are dropped

    for round_ in range(args.repeat):
        if round_ > 0:
            time.sleep(args.gap)
        for frames in messages:
            socket.send_multipart(frames)

    socket.close()
    context.term()
    for frames in messages:
        print(json.dumps({"frames": [frame.decode("utf-8") for frame in frames]}))


if __name__ == "__main__":
    main()
