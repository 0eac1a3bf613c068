/**
 * Every fuzz target and its properties, shared by the test run (test/fuzz/fuzz.test.ts, a few
 * hundred cases each) and the long run (`npm run fuzz`, scripts/fuzz.ts).
 */
import type { FuzzCase } from './harness.js';
import { modePayloadCases } from './targets/mode-payload.js';
import { norenCases } from './targets/noren.js';
import { upstoxCases } from './targets/upstox.js';
import { angelCases } from './targets/angel.js';
import { batchCases } from './targets/batch.js';
import { controlCases } from './targets/control.js';
import { dhanCases } from './targets/dhan.js';
import { requestCases } from './targets/requests.js';
import { topicCases } from './targets/topics.js';
import { zerodhaCases } from './targets/zerodha.js';

export type { CaseResult, FuzzCase } from './harness.js';

export const TARGETS: Readonly<Record<string, { description: string; cases: readonly FuzzCase[] }>> = {
  requests: { description: 'client frames: decodeFrame, resolveAction, parseSubscribe/Unsubscribe, checkItem, parseExtensions', cases: requestCases },
  topics: { description: 'bus topics: parseTopic, formatTopic', cases: topicCases },
  batch: { description: 'bus frames: decodeBatch, BatchEncoder, ZmqSubscriber receive → BusListener', cases: batchCases },
  control: { description: 'control protocol frames: decodeToGateway, decodeToAdapter, encodeFrame', cases: controlCases },
  zerodha: { description: 'Kite ticker frames: decodeKiteBinary, decodeKiteText', cases: zerodhaCases },
  angel: { description: 'Angel SmartStream frames: decodeAngelBinary, decodeAngelText', cases: angelCases },
  dhan: { description: 'Dhan live feed and 20-level depth frames: decodeDhanFeed, decodeDhanDepth20, decodeDhanText', cases: dhanCases },
  noren: { description: 'Noren (Shoonya, Flattrade) messages: decodeNorenText, NorenBook', cases: norenCases },
  upstox: { description: 'Upstox market data feed v3 frames: decodeUpstoxFeed (protobuf)', cases: upstoxCases },
  'mode-payload': { description: 'lower-mode payloads: projectPayload, topLevelMembers', cases: modePayloadCases },
};

/** Cases per property in `npm test`: enough to catch a regression, small enough for ~10 s in all. */
export const TEST_RUNS = 500;
