/**
 * Streams a process holds upstream for itself (recording, history/holds.ts): a `StreamHolder`
 * is one more subscriber in the subscription index, so Upstream keeps the adapter at the highest
 * mode anyone holds, replays it after a restart and tells the bus the stream is wanted, as for
 * any client; clients coming and going never release it. It is nobody's session: the fan-out
 * sends it nothing and it counts against no limit.
 */
import type { HoldPort } from '../history/holds.js';
import { requestedDepth } from '../protocol/depth.js';
import { SHARED_FEED } from '../protocol/topics.js';
import type { Feeds } from './feeds.js';
import type { SubscriptionIndex } from './subscription-index.js';
import type { Upstream } from './upstream.js';

/** The subscriber that holds streams for the process itself. */
export class StreamHolder {
  readonly holds = 'recording';
}

/** Depth is the highest mode: its ticks carry, and are recorded with, every mode's data. */
const HOLD_MODE = 3;

/** How `holder` holds streams in `index` through `upstream` (one per process that holds). */
export function holdPort<S>(feeds: Feeds, upstream: Upstream, index: SubscriptionIndex<S | StreamHolder>, holder: StreamHolder): HoldPort {
  return {
    live: (feed) => feed === SHARED_FEED || feeds.adapter(feed)?.status() === 'live',
    acquire: (feed, exchange, symbol) =>
      upstream.acquire(feed, exchange, symbol, HOLD_MODE, requestedDepth(symbol, 5), () => {
        index.add(feed, exchange, symbol, HOLD_MODE, holder);
      }),
    drop: (feed, exchange, symbol) => {
      if (index.remove(feed, exchange, symbol, HOLD_MODE, holder)) void upstream.release(feed, exchange, symbol);
    },
  };
}
