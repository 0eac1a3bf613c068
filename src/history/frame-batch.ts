/**
 * A batch of raw broker messages as the frame recorder hands it to its writer thread: the bytes
 * copied once, end to end, into one buffer, and the rest as columns, so posting the batch
 * transfers its memory instead of cloning every message. Pure.
 */

/** A recorded socket, as each batch that holds its messages names it. */
export interface FrameConnectionInfo {
  /** `<feed>#<n>`. */
  readonly id: string;
  readonly broker: string;
  readonly feed: string;
  /** The socket as its logs name it (`Zerodha ticker`, `Dhan 20-level depth feed`). */
  readonly socket: string;
  /** Epoch ms. */
  readonly openedAt: number;
}

export const FRAME_OUT = 1;
export const FRAME_BINARY = 2;

/** One batch, as posted to the writer. Message i is `data[end[i-1] .. end[i])`. */
export interface FrameBatch {
  id: number;
  count: number;
  /** Bytes of the messages (the length of `data`). */
  bytes: number;
  connections: FrameConnectionInfo[];
  connection: Uint32Array;
  /** FRAME_OUT | FRAME_BINARY. */
  flags: Uint8Array;
  receivedAt: Float64Array;
  end: Uint32Array;
  data: Uint8Array;
}

/** One message as read back from a batch or the store. */
export interface RecordedFrame {
  connection: FrameConnectionInfo;
  direction: 'in' | 'out';
  binary: boolean;
  /** Epoch ms. */
  receivedAt: number;
  data: Buffer;
}

/** A connection's place in the batch being built (kept on the connection, so adding a message needs no lookup). */
export interface BatchSlot {
  info: FrameConnectionInfo;
  batch: number;
  index: number;
}

export class FrameBatchBuilder {
  count = 0;
  bytes = 0;
  private generation = 0;
  private connections: FrameConnectionInfo[] = [];
  private connection: Uint32Array;
  private flags: Uint8Array;
  private receivedAt: Float64Array;
  private end: Uint32Array;
  private data: Uint8Array;

  constructor(
    readonly maxFrames: number,
    readonly slabBytes: number,
  ) {
    this.connection = new Uint32Array(maxFrames);
    this.flags = new Uint8Array(maxFrames);
    this.receivedAt = new Float64Array(maxFrames);
    this.end = new Uint32Array(maxFrames);
    this.data = new Uint8Array(slabBytes);
  }

  /** Whether a message of `length` bytes fits in the batch being built (a fresh batch takes any). */
  fits(length: number): boolean {
    return this.count < this.maxFrames && (this.count === 0 || this.bytes + length <= this.data.length);
  }

  get full(): boolean {
    return this.count >= this.maxFrames || this.bytes >= this.data.length;
  }

  /** Copies one message in; the caller checked `fits`. */
  add(slot: BatchSlot, flags: number, receivedAt: number, data: Buffer | string): void {
    if (slot.batch !== this.generation) {
      slot.batch = this.generation;
      slot.index = this.connections.length;
      this.connections.push(slot.info);
    }
    const length = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    if (this.bytes + length > this.data.length) {
      // A message larger than the slab: a batch of its own, in a buffer its size.
      const grown = new Uint8Array(this.bytes + length);
      grown.set(this.data.subarray(0, this.bytes));
      this.data = grown;
    }
    if (typeof data === 'string') Buffer.from(this.data.buffer, this.data.byteOffset, this.data.length).write(data, this.bytes, 'utf8');
    else this.data.set(data, this.bytes);
    this.bytes += length;
    const at = this.count++;
    this.connection[at] = slot.index;
    this.flags[at] = flags;
    this.receivedAt[at] = receivedAt;
    this.end[at] = this.bytes;
  }

  /** The batch so far (its arrays are handed over: transfer them) and a fresh builder state. */
  take(id: number): FrameBatch {
    const batch: FrameBatch = {
      id,
      count: this.count,
      bytes: this.bytes,
      connections: this.connections,
      connection: this.connection.subarray(0, this.count),
      flags: this.flags.subarray(0, this.count),
      receivedAt: this.receivedAt.subarray(0, this.count),
      end: this.end.subarray(0, this.count),
      data: this.data.subarray(0, this.bytes),
    };
    this.generation++;
    this.connections = [];
    this.connection = new Uint32Array(this.maxFrames);
    this.flags = new Uint8Array(this.maxFrames);
    this.receivedAt = new Float64Array(this.maxFrames);
    this.end = new Uint32Array(this.maxFrames);
    this.data = new Uint8Array(this.slabBytes);
    this.count = 0;
    this.bytes = 0;
    return batch;
  }
}

/** The buffers a batch hands over when posted. */
export function batchTransfer(batch: FrameBatch): ArrayBuffer[] {
  return [batch.connection, batch.flags, batch.receivedAt, batch.end, batch.data].map((array) => array.buffer as ArrayBuffer);
}

/** The batch's messages in the order they were added; each `data` is a view of the batch's buffer. */
export function unpackFrames(batch: FrameBatch): RecordedFrame[] {
  const frames: RecordedFrame[] = new Array(batch.count);
  const base = Buffer.from(batch.data.buffer, batch.data.byteOffset, batch.data.byteLength);
  let start = 0;
  for (let i = 0; i < batch.count; i++) {
    const end = batch.end[i]!;
    const flags = batch.flags[i]!;
    frames[i] = {
      connection: batch.connections[batch.connection[i]!]!,
      direction: flags & FRAME_OUT ? 'out' : 'in',
      binary: (flags & FRAME_BINARY) !== 0,
      receivedAt: batch.receivedAt[i]!,
      data: base.subarray(start, end),
    };
    start = end;
  }
  return frames;
}
