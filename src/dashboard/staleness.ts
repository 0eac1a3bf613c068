/**
 * What the market watch shows about trust in its prices (pure): each row's age and mark, the
 * feed's pill and the notice above the table. The rules themselves (`streamFreshness`) are the
 * client SDK's, shared with `tickcast watch`.
 */
import { DEFAULT_STALE_AFTER_MS, type FeedState, type FeedStates, type Freshness, streamFreshness } from '../client/freshness.js';

/** A row turns stale past this without a tick. */
export const STALE_AFTER_MS = DEFAULT_STALE_AFTER_MS;

/** The row's class for each state; fresh and waiting rows have none. */
const ROW_CLASS: Record<Freshness, string | undefined> = { offline: 'row-offline', feed: 'row-feed-down', stale: 'row-stale', fresh: undefined, waiting: undefined };
/** Every class `rowLook` may give, so the view can clear the others. */
export const ROW_CLASSES = ['row-offline', 'row-feed-down', 'row-stale'] as const;

export interface RowLook {
  state: Freshness;
  /** The age cell: the last tick's age, or a dash before the first one. */
  age: string;
  /** The mark under it (`stale`, `feed down`, `no connection`), '' for none. */
  mark: string;
  rowClass: string | undefined;
}

export interface RowContext {
  now: number;
  feedDown: FeedState | undefined;
  connected: boolean;
}

export function rowLook(lastTickAt: number | undefined, context: RowContext): RowLook {
  const fresh = streamFreshness({ lastTickAt, now: context.now, staleAfterMs: STALE_AFTER_MS, feedDown: context.feedDown, connected: context.connected });
  return { state: fresh.state, age: fresh.age ?? '—', mark: fresh.marker, rowClass: ROW_CLASS[fresh.state] };
}

const FEED_PILL: Record<string, string> = { live: 'pill-ok', reconnecting: 'pill-warn', stale: 'pill-warn', down: 'pill-bad' };

export interface FeedLook {
  /** Hidden until a feed has reported its state (an instance without adapters never does). */
  hidden: boolean;
  kind: string;
  label: string;
  title: string;
  /** The warning above the table, '' when every feed is live. */
  notice: string;
}

export function feedLook(feeds: FeedStates): FeedLook {
  const all = feeds.all();
  const down = feeds.notLive();
  const shown = down ?? all[0];
  const notice = down ? `Feed ${down.feed} is ${down.status}${down.message ? `: ${down.message}` : ''}. Prices shown may be stale.` : '';
  if (!shown) return { hidden: true, kind: 'pill-idle', label: '', title: '', notice };
  return {
    hidden: false,
    kind: FEED_PILL[shown.status] ?? 'pill-warn',
    label: `Feed ${shown.status}`,
    title: all.map((f) => `${f.feed}: ${f.status}${f.message ? ` (${f.message})` : ''}`).join('\n'),
    notice,
  };
}
