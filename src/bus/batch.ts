/**
 * Batched bus messages: many (topic, payload) pairs in one ZeroMQ message, so a busy adapter
 * pays the per-message cost of ZeroMQ once per batch instead of once per tick.
 *
 * Wire format (a tickcast extension; OpenAlgo publishers keep sending one `[topic, JSON]` each):
 *   frame 1: the topic `@batch`
 *   frame 2: entries, each `u16 topic length | topic (UTF-8) | u32 payload length | payload (UTF-8)`,
 *            lengths big-endian, in bytes.
 * On NATS a batch is one message whose payload is the bytes `@batch` followed by the entries
 * (bus/nats.ts), all of one stream since the subject names the stream.
 * Pure: no I/O.
 */

export const BATCH_TOPIC = '@batch';
export const BATCH_TOPIC_BYTES = Buffer.from(BATCH_TOPIC);

const MAX_TOPIC_BYTES = 0xffff;

export class BatchEncoder {
  private topics: string[] = [];
  private payloads: string[] = [];
  private bytes = 0;

  get count(): number {
    return this.topics.length;
  }

  /** Approximate encoded size (exact for ASCII), for flush-by-size decisions. */
  get size(): number {
    return this.bytes;
  }

  /**
   * Queues an entry. A topic over 65535 bytes cannot be encoded: it throws RangeError here, with
   * the batch unchanged, rather than at `take`, where it would fail every later batch too.
   */
  add(topic: string, payload: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit: only long topics need measuring.
    if (topic.length > MAX_TOPIC_BYTES / 3 && Buffer.byteLength(topic) > MAX_TOPIC_BYTES) {
      throw new RangeError(`topic longer than ${MAX_TOPIC_BYTES} bytes`);
    }
    this.topics.push(topic);
    this.payloads.push(payload);
    this.bytes += 6 + topic.length + payload.length;
  }

  /** Encodes the pending entries (after `prefix`, if given) and starts a new batch. */
  take(prefix?: Buffer): Buffer {
    const { topics, payloads } = this;
    let size = prefix ? prefix.length : 0;
    const topicBytes = new Array<number>(topics.length);
    const payloadBytes = new Array<number>(topics.length);
    for (let i = 0; i < topics.length; i++) {
      topicBytes[i] = Buffer.byteLength(topics[i]!);
      if (topicBytes[i]! > MAX_TOPIC_BYTES) throw new RangeError(`topic longer than ${MAX_TOPIC_BYTES} bytes`);
      payloadBytes[i] = Buffer.byteLength(payloads[i]!);
      size += 6 + topicBytes[i]! + payloadBytes[i]!;
    }
    const out = Buffer.allocUnsafe(size);
    let at = prefix ? prefix.copy(out, 0) : 0;
    for (let i = 0; i < topics.length; i++) {
      out.writeUInt16BE(topicBytes[i]!, at);
      at = 2 + at;
      at += out.write(topics[i]!, at, 'utf8');
      out.writeUInt32BE(payloadBytes[i]!, at);
      at += 4;
      at += out.write(payloads[i]!, at, 'utf8');
    }
    this.topics = [];
    this.payloads = [];
    this.bytes = 0;
    return out;
  }
}

/**
 * Calls `entry` for each (topic, payload) in a batch. Returns null when the whole batch was
 * well formed, or why decoding stopped (entries before the fault have been delivered).
 */
export function decodeBatch(batch: Buffer, entry: (topic: string, payload: string) => void): string | null {
  let at = 0;
  while (at < batch.length) {
    if (at + 2 > batch.length) return 'truncated topic length';
    const topicEnd = at + 2 + batch.readUInt16BE(at);
    if (topicEnd + 4 > batch.length) return 'truncated topic';
    const payloadEnd = topicEnd + 4 + batch.readUInt32BE(topicEnd);
    if (payloadEnd > batch.length) return 'truncated payload';
    entry(batch.toString('utf8', at + 2, topicEnd), batch.toString('utf8', topicEnd + 4, payloadEnd));
    at = payloadEnd;
  }
  return null;
}
