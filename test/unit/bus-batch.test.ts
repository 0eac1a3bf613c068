import { describe, expect, it } from 'vitest';
import { BatchEncoder, decodeBatch } from '../../src/bus/batch.js';

function decodeAll(buffer: Buffer): { entries: Array<[string, string]>; fault: string | null } {
  const entries: Array<[string, string]> = [];
  const fault = decodeBatch(buffer, (topic, payload) => entries.push([topic, payload]));
  return { entries, fault };
}

describe('bus batches', () => {
  it('round-trips entries, including multi-byte text and empty payloads', () => {
    const encoder = new BatchEncoder();
    const entries: Array<[string, string]> = [
      ['simulator|NSE_RELIANCE_LTP', '{"ltp": 1418.0}'],
      ['NSE_M&M_QUOTE', '{"name":"महिंद्रा","ltp":3000.5}'],
      ['CRYPTO_SOL_INR_LTP', ''],
    ];
    for (const [topic, payload] of entries) encoder.add(topic, payload);
    expect(encoder.count).toBe(3);
    const buffer = encoder.take();
    expect(encoder.count).toBe(0);
    expect(decodeAll(buffer)).toEqual({ entries, fault: null });
    expect(decodeAll(encoder.take())).toEqual({ entries: [], fault: null });
  });

  it('delivers the entries before a fault and names the fault', () => {
    const encoder = new BatchEncoder();
    encoder.add('NSE_A_LTP', '{"ltp":1}');
    encoder.add('NSE_B_LTP', '{"ltp":2}');
    const buffer = encoder.take();
    const firstEntryEnd = 2 + 'NSE_A_LTP'.length + 4 + '{"ltp":1}'.length;
    for (let cut = 1; cut < buffer.length; cut++) {
      const { entries, fault } = decodeAll(buffer.subarray(0, cut));
      if (cut === firstEntryEnd) {
        expect(fault).toBeNull(); // a complete batch of one entry
        expect(entries).toEqual([['NSE_A_LTP', '{"ltp":1}']]);
        continue;
      }
      expect(fault, `cut at ${cut}`).toMatch(/^truncated (topic length|topic|payload)$/);
      expect(entries).toHaveLength(cut < firstEntryEnd ? 0 : 1);
    }
  });

  it('rejects a length field larger than the message without allocating for it', () => {
    const garbage = Buffer.from([0x00, 0x01, 0x41, 0xff, 0xff, 0xff, 0xff, 0x7b]);
    expect(decodeAll(garbage)).toEqual({ entries: [], fault: 'truncated payload' });
  });
});
