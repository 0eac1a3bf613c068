/**
 * The bus of an instance run as several gateway workers (`--workers N`): the primary binds the
 * instance's bus endpoint with an XSUB socket, exactly where a single gateway's SUB would be, so
 * publishers do not change; libzmq's proxy forwards every message, on its own thread, to an XPUB
 * socket on a private IPC endpoint that each worker's SUB connects to. Messages (batches
 * included) pass through untouched and no JavaScript runs per message.
 */
import * as zmq from 'zeromq';
import { HIGH_WATER_MARK } from './zeromq.js';
import { bindSocket } from './zmq-socket.js';

export interface ZmqBusProxyOptions {
  /** The instance's bus endpoint, where publishers connect. */
  endpoint: string;
  /** Where workers connect: a socket file in a 0700 directory of this primary's own (cluster/fanout-dir.ts). */
  fanout: string;
  /** Called if the proxy stops for any reason but close(). */
  onError?: (error: Error) => void;
}

export class ZmqBusProxy {
  private closed = false;

  private constructor(
    private readonly proxy: zmq.Proxy<zmq.XSubscriber, zmq.XPublisher>,
    /** The bus endpoint actually bound (`tcp://host:0` resolves to the real port). */
    readonly endpoint: string,
    readonly fanout: string,
    private readonly running: Promise<void>,
  ) {}

  /** Binds both ends, or throws TickcastError PORT_IN_USE / BUS_BIND_FAILED naming the endpoint. */
  static async bind(options: ZmqBusProxyOptions): Promise<ZmqBusProxy> {
    const front = new zmq.XSubscriber({ receiveHighWaterMark: HIGH_WATER_MARK, linger: 0 });
    const back = new zmq.XPublisher({ sendHighWaterMark: HIGH_WATER_MARK, linger: 0 });
    const endpoint = await bindSocket(front, options.endpoint, 'bus');
    let fanout: string;
    try {
      fanout = await bindSocket(back, options.fanout, 'worker fan-out');
    } catch (error) {
      front.close();
      throw error;
    }
    const proxy = new zmq.Proxy(front, back);
    let self: ZmqBusProxy | undefined;
    const running = proxy.run().catch((error: Error) => {
      if (self && !self.closed) options.onError?.(error);
    });
    self = new ZmqBusProxy(proxy, endpoint, fanout, running);
    return self;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.proxy.terminate();
    await this.running;
    this.proxy.frontEnd.close();
    this.proxy.backEnd.close();
  }
}
