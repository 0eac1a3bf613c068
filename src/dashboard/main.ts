/**
 * The dashboard page: sign-in, market watch, depth ladder and gateway panel, wired together.
 * The API key lives in sessionStorage only (gone when the tab closes); the watchlist, which is
 * not secret, in localStorage.
 */
import './styles.css';
import { FeedStates } from '../client/freshness.js';
import { ApiError, fetchInstances, fetchMetrics, fetchRecorded, fetchStatus } from './api.js';
import { DepthView } from './depth-view.js';
import { byId, setText } from './dom.js';
import { type ConnectionState, MarketFeed } from './feed.js';
import { GatewayView } from './gateway-view.js';
import { type Instrument, instrumentKey, parseWatchlist } from './instrument.js';
import { type Histogram, histogramDelta, parseHistogram, quantile } from './prometheus.js';
import { type Quote, mergeTick } from './quote.js';
import { RateMeter } from './rate.js';
import { RecordedView } from './recorded-view.js';
import { SearchView } from './search-view.js';
import { type RowContext, feedLook } from './staleness.js';
import { WatchView } from './watch-view.js';

const KEY_STORAGE = 'tickcast.apiKey';
const WATCH_STORAGE = 'tickcast.watchlist';
const MAX_WATCHED = 50;
const STATUS_EVERY_MS = 2000;
const INSTANCES_EVERY_MS = 10_000;
/** The recorded streams' ranges and rates move slowly: every few seconds is enough. */
const RECORDED_EVERY_MS = 5000;
/** Ages in the watch are redrawn this often, ticks or not. */
const AGES_EVERY_MS = 1000;
const LATENCY_METRIC = 'tickcast_publish_to_send_seconds';

/** The gateway's WebSocket: the page's own address (it serves both), with ws: or wss:. */
function gatewayUrl(): string {
  const url = new URL('.', location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.hash = '';
  url.search = '';
  return url.href;
}

class Session {
  private readonly quotes = new Map<string, Quote>();
  private readonly stops = new Map<string, () => void>();
  private readonly watch: WatchView;
  private readonly depth: DepthView;
  private readonly gateway = new GatewayView();
  private readonly recorded = new RecordedView(byId<HTMLTableElement>('recorded'), byId('recorded-summary'), byId('recorded-notice'));
  /** A list request still out: the next poll waits for it rather than piling up. */
  private recordedPending = false;
  private readonly timers: Array<ReturnType<typeof setInterval>> = [];
  private readonly rateOut = new RateMeter();
  private readonly rateIn = new RateMeter();
  private latency: { previous: Histogram | undefined; p50: number | undefined; p99: number | undefined } = { previous: undefined, p50: undefined, p99: undefined };
  private readonly message = byId('watch-message');
  private closed = false;

  constructor(
    readonly apiKey: string,
    private readonly feed: MarketFeed,
    /** The feeds' states and the connection, now: what every row's age and mark depend on. */
    private readonly context: () => RowContext,
  ) {
    this.watch = new WatchView(byId<HTMLTableElement>('watch').tBodies[0]!, byId('watch-empty'), {
      select: (instrument) => this.select(instrument),
      remove: (instrument) => this.unwatch(instrument),
    });
    this.refreshAges();
    this.depth = new DepthView(byId('depth-title'), byId('depth-body'));
    new SearchView(
      byId<HTMLInputElement>('search'),
      byId<HTMLUListElement>('search-results'),
      () => this.apiKey,
      (instrument) => {
        void this.add(instrument);
      },
      (text) => this.notify(text),
    );
    for (const instrument of parseWatchlist(localStorage.getItem(WATCH_STORAGE), MAX_WATCHED)) void this.add(instrument, false);
    void this.poll();
    void this.pollInstances();
    void this.pollRecorded();
    this.timers.push(setInterval(() => void this.poll(), STATUS_EVERY_MS));
    this.timers.push(setInterval(() => void this.pollRecorded(), RECORDED_EVERY_MS));
    this.timers.push(setInterval(() => void this.pollInstances(), INSTANCES_EVERY_MS));
    this.timers.push(setInterval(() => this.refreshAges(), AGES_EVERY_MS));
  }

  /** Ages and marks of every row for this moment (also when the feed or the connection changes). */
  refreshAges(): void {
    this.watch.refresh(this.context());
  }

  /** Adds an instrument to the watch and subscribes to it. */
  async add(instrument: Instrument, save = true): Promise<void> {
    const key = instrumentKey(instrument);
    if (this.watch.has(instrument)) {
      this.select(instrument);
      return;
    }
    if (this.stops.size >= MAX_WATCHED) {
      this.notify(`The watch holds at most ${MAX_WATCHED} symbols; remove one first.`);
      return;
    }
    this.notify('');
    this.watch.add(instrument);
    if (save) this.save();
    if (!this.depth.selected) this.select(instrument);
    try {
      const stop = await this.feed.watch(instrument, (data) => this.tick(instrument, data));
      if (this.closed || !this.watch.has(instrument)) {
        stop();
        return;
      }
      this.stops.set(key, stop);
    } catch (error) {
      this.watch.fail(instrument, (error as Error).message);
      this.notify(`${key}: ${(error as Error).message}`);
    }
  }

  private unwatch(instrument: Instrument): void {
    const key = instrumentKey(instrument);
    this.stops.get(key)?.();
    this.stops.delete(key);
    this.quotes.delete(key);
    this.watch.remove(instrument);
    this.save();
    if (this.depth.selected && instrumentKey(this.depth.selected) === key) this.depth.clear();
  }

  private select(instrument: Instrument): void {
    this.watch.select(instrument);
    this.depth.show(instrument, this.quotes.get(instrumentKey(instrument)));
  }

  private tick(instrument: Instrument, data: Readonly<Record<string, unknown>>): void {
    const key = instrumentKey(instrument);
    const quote = mergeTick(this.quotes.get(key), data);
    this.quotes.set(key, quote);
    this.watch.update(instrument, quote, Date.now());
    this.depth.update(instrument, quote);
  }

  private save(): void {
    const keys = [...document.querySelectorAll('#watch tbody tr')].map((row) => row.getAttribute('data-instrument'));
    localStorage.setItem(WATCH_STORAGE, JSON.stringify(keys));
  }

  private notify(text: string): void {
    this.message.hidden = text === '';
    setText(this.message, text);
  }

  private async poll(): Promise<void> {
    if (document.hidden) return;
    try {
      const [status, metrics] = await Promise.all([fetchStatus(), fetchMetrics().catch(() => undefined)]);
      const now = performance.now();
      const ticksIn = Object.values(status.bus?.ticks_by_feed ?? {}).reduce((a, b) => a + b, 0);
      const histogram = metrics === undefined ? undefined : parseHistogram(metrics, LATENCY_METRIC);
      if (histogram) {
        const recent = histogramDelta(histogram, this.latency.previous);
        if (recent.count > 0) {
          const ms = (seconds: number | undefined): number | undefined => (seconds === undefined ? undefined : seconds * 1000);
          this.latency = { previous: histogram, p50: ms(quantile(recent, 0.5)), p99: ms(quantile(recent, 0.99)) };
        }
      }
      this.gateway.showStatus(status, {
        messagesOut: this.rateOut.sample(status.clients?.sent ?? 0, now),
        ticksIn: this.rateIn.sample(ticksIn, now),
        latencyP50: this.latency.p50,
        latencyP99: this.latency.p99,
      });
    } catch (error) {
      this.gateway.showUnreachable((error as Error).message);
    }
  }

  private async pollInstances(): Promise<void> {
    if (document.hidden) return;
    try {
      this.gateway.showInstances(await fetchInstances(this.apiKey));
    } catch (error) {
      this.gateway.showInstances(error instanceof ApiError ? `Instances unavailable: ${error.message}` : 'Instances unavailable.');
    }
  }

  private async pollRecorded(): Promise<void> {
    if (document.hidden || this.recordedPending) return;
    this.recordedPending = true;
    try {
      this.recorded.show(await fetchRecorded(this.apiKey));
    } catch (error) {
      this.recorded.showUnavailable(error instanceof ApiError ? error.message : 'the gateway did not answer');
    } finally {
      this.recordedPending = false;
    }
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers) clearInterval(timer);
    this.feed.close();
  }
}

const views = { signin: byId('signin-view'), app: byId('app-view') };
const form = byId<HTMLFormElement>('signin');
const keyInput = byId<HTMLInputElement>('api-key');
const submit = byId<HTMLButtonElement>('signin-submit');
const formError = byId('signin-error');
const feedMessage = byId('feed-message');
const feedPill = byId('feed-state');
const connection = byId('connection');
const user = byId('user');
const signOut = byId<HTMLButtonElement>('signout');
let session: Session | undefined;

/** The signed-in connection's feeds, as their `feed_status` events said, and whether it is up. */
let feeds = new FeedStates();
let connected = false;
const rowContext = (): RowContext => ({ now: Date.now(), feedDown: feeds.notLive(), connected });

function showFeeds(): void {
  const look = feedLook(feeds);
  feedPill.hidden = look.hidden;
  feedPill.className = `pill ${look.kind}`;
  setText(feedPill, look.label);
  feedPill.title = look.title;
  feedMessage.hidden = look.notice === '';
  setText(feedMessage, look.notice);
  session?.refreshAges();
}

function showConnection(state: ConnectionState | 'signed-out' | 'connecting', detail = ''): void {
  const wasConnected = connected;
  connected = state === 'connected';
  const look: Record<string, [string, string]> = {
    connected: ['pill-ok', 'Live'],
    reconnecting: ['pill-warn', 'Reconnecting…'],
    disconnected: ['pill-bad', 'Disconnected'],
    connecting: ['pill-warn', 'Connecting…'],
    'signed-out': ['pill-idle', 'Signed out'],
  };
  const [kind, label] = look[state]!;
  connection.className = `pill ${kind}`;
  setText(connection, label);
  connection.title = detail;
  if (connected !== wasConnected) session?.refreshAges();
}

async function signIn(apiKey: string): Promise<void> {
  submit.disabled = true;
  formError.hidden = true;
  showConnection('connecting');
  feeds = new FeedStates();
  showFeeds();
  const feed = new MarketFeed(gatewayUrl(), apiKey, {
    state: (state, detail) => showConnection(state, detail),
    feedStatus: (feed, status, message) => {
      // The gateway tells its clients their upstream feed's state: when it changes, and (newer
      // gateways) right after authentication, so this may come before any tick.
      feeds.update({ feed, status, message });
      showFeeds();
    },
  });
  try {
    const identity = await feed.connect();
    sessionStorage.setItem(KEY_STORAGE, apiKey);
    keyInput.value = '';
    setText(user, `${identity.user} · ${identity.broker}`);
    user.hidden = false;
    signOut.hidden = false;
    views.signin.hidden = true;
    views.app.hidden = false;
    session = new Session(apiKey, feed, rowContext);
    showConnection('connected');
  } catch (error) {
    feed.close();
    sessionStorage.removeItem(KEY_STORAGE);
    showConnection('signed-out');
    setText(formError, (error as Error).message || 'Sign-in failed.');
    formError.hidden = false;
    keyInput.focus();
  } finally {
    submit.disabled = false;
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const apiKey = keyInput.value.trim();
  if (apiKey !== '') void signIn(apiKey);
});

signOut.addEventListener('click', () => {
  session?.close();
  session = undefined;
  sessionStorage.removeItem(KEY_STORAGE);
  // A fresh page: no rows, timers or listeners of the old session survive.
  location.reload();
});

const stored = sessionStorage.getItem(KEY_STORAGE);
if (stored) void signIn(stored);
else keyInput.focus();
