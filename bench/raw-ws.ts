/**
 * A minimal WebSocket client for the load generator. A `ws` client costs 10–30 µs of CPU per
 * received message (DESIGN §4), which on a 2-core machine is more than the server under test
 * spends; this one reads into a caller-supplied buffer, finds frame boundaries and hands the
 * caller byte ranges, so a market-data frame costs no allocation beyond a partial frame carried
 * between reads. It speaks just what the benchmark needs: the upgrade, unfragmented server
 * frames, ping → pong, and masked text frames out.
 */
import { createHash, randomBytes } from 'node:crypto';
import { type Socket, connect } from 'node:net';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const HEADER_END = Buffer.from('\r\n\r\n');

export interface RawWebSocketHandlers {
  /** The upgrade succeeded; requests may be sent. */
  onOpen(): void;
  /** One text frame, as bytes [start, end) of `buf`; `buf` is only valid during the call. */
  onText(buf: Buffer, start: number, end: number, nowMs: number): void;
  /** The connection is gone (closed by either side, or failed); `why` says which. */
  onClose(why: string): void;
}

export interface RawWebSocketOptions {
  host: string;
  port: number;
  path: string;
  /** The buffer reads land in; it may be shared by every connection of a process. */
  readBuffer: Buffer;
  /** Epoch ms with sub-ms precision, read once per socket read and passed to onText. */
  now: () => number;
  /**
   * Called after each read: return a delay in ms to pause reading for that long (a slow
   * reader), or 0 to keep reading.
   */
  pauseAfterRead?: () => number;
}

export class RawWebSocket {
  private readonly socket: Socket;
  private readonly key = randomBytes(16).toString('base64');
  private pending: Buffer | null = null;
  private upgraded = false;
  private closed = false;

  constructor(
    private readonly options: RawWebSocketOptions,
    private readonly handlers: RawWebSocketHandlers,
  ) {
    this.socket = connect({
      host: options.host,
      port: options.port,
      noDelay: true,
      onread: { buffer: options.readBuffer, callback: (n) => this.onRead(n) },
    });
    this.socket.on('connect', () => {
      this.socket.write(
        `GET ${options.path} HTTP/1.1\r\nHost: ${options.host}:${options.port}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${this.key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    this.socket.on('error', (error) => this.close(`socket error: ${error.message}`));
    this.socket.on('close', () => this.close('socket closed'));
  }

  sendText(text: string): void {
    if (this.closed) return;
    this.sendFrame(0x1, Buffer.from(text));
  }

  close(why = 'closed by client'): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.handlers.onClose(why);
  }

  private onRead(bytes: number): boolean {
    const nowMs = this.options.now();
    const chunk = this.options.readBuffer.subarray(0, bytes);
    let buf = chunk;
    if (this.pending) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    let at = this.upgraded ? 0 : this.upgrade(buf);
    if (at < 0) return !this.closed;
    at = this.frames(buf, at, nowMs);
    // What is left is the start of a frame; keep a copy, since the read buffer will be reused.
    if (at < buf.length && !this.closed) this.pending = Buffer.from(buf.subarray(at));
    const pause = this.options.pauseAfterRead?.() ?? 0;
    if (pause > 0 && !this.closed) {
      setTimeout(() => {
        if (!this.closed) this.socket.resume();
      }, pause);
      return false;
    }
    return !this.closed;
  }

  /** Consumes the HTTP response; returns where frames start, or -1 if it is incomplete or refused. */
  private upgrade(buf: Buffer): number {
    const end = buf.indexOf(HEADER_END);
    if (end < 0) {
      this.pending = Buffer.from(buf);
      return -1;
    }
    const head = buf.toString('latin1', 0, end);
    const accept = createHash('sha1').update(this.key + WS_GUID).digest('base64');
    if (!head.startsWith('HTTP/1.1 101') || !head.toLowerCase().includes(`sec-websocket-accept: ${accept.toLowerCase()}`)) {
      this.close(`upgrade refused: ${head.split('\r\n')[0]}`);
      return -1;
    }
    this.upgraded = true;
    this.handlers.onOpen();
    return end + HEADER_END.length;
  }

  /** Dispatches every complete frame from `at`; returns where the first incomplete one starts. */
  private frames(buf: Buffer, at: number, nowMs: number): number {
    while (!this.closed && buf.length - at >= 2) {
      const b0 = buf[at]!;
      const b1 = buf[at + 1]!;
      let length = b1 & 0x7f;
      let header = 2;
      if (length === 126) {
        if (buf.length - at < 4) break;
        length = buf.readUInt16BE(at + 2);
        header = 4;
      } else if (length === 127) {
        if (buf.length - at < 10) break;
        length = buf.readUInt32BE(at + 2) * 2 ** 32 + buf.readUInt32BE(at + 6);
        header = 10;
      }
      if (b1 & 0x80) {
        this.close('protocol error: masked frame from server');
        break;
      }
      const start = at + header;
      const end = start + length;
      if (end > buf.length) break;
      const opcode = b0 & 0x0f;
      if ((b0 & 0x80) === 0 || opcode === 0x0) {
        this.close('protocol error: fragmented frame (not expected from the servers under test)');
        break;
      }
      if (opcode === 0x1 || opcode === 0x2) this.handlers.onText(buf, start, end, nowMs);
      else if (opcode === 0x9) this.sendFrame(0xa, Buffer.from(buf.subarray(start, end)));
      else if (opcode === 0x8) this.close(`closed by server (code ${length >= 2 ? buf.readUInt16BE(start) : 'none'})`);
      at = end;
    }
    return at;
  }

  /** Clients must mask what they send (RFC 6455 §5.3). */
  private sendFrame(opcode: number, payload: Buffer): void {
    const length = payload.length;
    const header = length < 126 ? 2 : length < 65536 ? 4 : 10;
    const frame = Buffer.allocUnsafe(header + 4 + length);
    frame[0] = 0x80 | opcode;
    if (header === 2) frame[1] = 0x80 | length;
    else if (header === 4) {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(length, 2);
    } else {
      frame[1] = 0x80 | 127;
      frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
      frame.writeUInt32BE(length >>> 0, 6);
    }
    const mask = randomBytes(4);
    mask.copy(frame, header);
    for (let i = 0; i < length; i++) frame[header + 4 + i] = payload[i]! ^ mask[i & 3]!;
    this.socket.write(frame);
  }
}
