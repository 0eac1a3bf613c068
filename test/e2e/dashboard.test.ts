/**
 * The dashboard end to end, in headless Chromium against a real gateway with the simulator:
 * sign in, search and subscribe, prices that move and flash, the depth ladder, the gateway
 * panel, the recorded streams, ages and stale marks, the feed going down and back, and a page of
 * another origin reading the history API (CORS). Screenshots are left in
 * test-artifacts/ (dashboard.png, dashboard-stale.png, dashboard-feed-down.png) for a person to look at.
 *
 * Needs Debian's chromium (`apt-get install chromium`), or CHROMIUM_PATH naming another build;
 * without one the test fails and says so (it does not skip).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'test-artifacts');
const PRICE = /^\d{1,3}(,\d{2,3})*\.\d{2}$/;

let gw: TestInstance;
let http: string;
let key: string;
let profile: string;
let context: BrowserContext;
let page: Page;
/** Console errors and uncaught exceptions in the page (a CSP violation shows up here too). */
const pageErrors: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is needed for the dashboard test and was not found at ${CHROMIUM}: install Debian's chromium (apt-get install -y --no-install-recommends chromium) or set CHROMIUM_PATH`);
  }
  // The page is served from dist/dashboard: bundle the current sources (esbuild takes well under a second).
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'build-dashboard.mjs')], { stdio: 'inherit' });
  // Recording on, so the Recorded card has the streams the page subscribes to.
  gw = await startTestInstance({ TICKCAST_SIM_RATE: '10', TICKCAST_RECORD: 'all' });
  http = gw.url.replace('ws://', 'http://');
  key = await gw.createKey('e2e');
  profile = mkdtempSync(join(tmpdir(), 'tickcast-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1400, height: 900 },
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => pageErrors.push(`exception: ${error.message}`));
}, 60_000);

afterAll(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await gw?.stop();
});

const ltpCell = (instrument: string) => page.locator(`#watch tr[data-instrument="${instrument}"] td.c-ltp`);
const ageOf = (instrument: string) => page.locator(`#watch tr[data-instrument="${instrument}"] td.c-age .age`).textContent();
const markOf = (instrument: string) => page.locator(`#watch tr[data-instrument="${instrument}"] td.c-age .mark`).textContent();
const rowClass = async (instrument: string): Promise<string> => (await page.locator(`#watch tr[data-instrument="${instrument}"]`).getAttribute('class')) ?? '';
/** An age of the last tick as the watch shows it. */
const AGE = /^(\d\.\d|\d+)s$|^\d+[mhd]$/;

/** Waits until `read` returns something `accept`s, and returns it; fails with the last value after `ms`. */
async function until<T>(read: () => Promise<T>, accept: (value: T) => boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  let value = await read();
  while (!accept(value)) {
    if (Date.now() > deadline) throw new Error(`gave up waiting; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    value = await read();
  }
  return value;
}

async function addBySearch(query: string, instrument: string): Promise<void> {
  await page.fill('#search', query);
  const option = page.locator(`#search-results li[data-instrument="${instrument}"]`);
  await option.waitFor({ state: 'visible', timeout: 10_000 });
  await option.click();
  await page.locator(`#watch tr[data-instrument="${instrument}"]`).waitFor({ timeout: 10_000 });
}

describe('dashboard', () => {
  it('serves the page at / with its hashed assets', async () => {
    const response = await page.goto(`${http}/`);
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-type']).toBe('text/html; charset=utf-8');
    expect(await page.title()).toBe('tickcast · market watch');
    await expect(page.locator('#signin').isVisible()).resolves.toBe(true);
  });

  it('refuses a wrong key with the gateway’s message and stays on the sign-in form', async () => {
    await page.fill('#api-key', 'not-a-valid-key');
    await page.click('#signin-submit');
    const error = page.locator('#signin-error');
    await error.waitFor({ state: 'visible', timeout: 10_000 });
    expect(await error.textContent()).toContain('Invalid API key');
    expect(await page.locator('#app-view').isVisible()).toBe(false);
    expect(await page.evaluate('sessionStorage.getItem("tickcast.apiKey")')).toBeNull();
  });

  it('signs in with a key kept in sessionStorage only', async () => {
    await page.fill('#api-key', key);
    await page.click('#signin-submit');
    await page.locator('#app-view').waitFor({ state: 'visible', timeout: 10_000 });
    expect(await page.locator('#user').textContent()).toBe('e2e · simulator');
    expect(await page.locator('#connection').textContent()).toBe('Live');
    expect(await page.evaluate('sessionStorage.getItem("tickcast.apiKey")')).toBe(key);
    expect(await page.evaluate(`Object.values(localStorage).some((v) => v.includes(${JSON.stringify(key)}))`)).toBe(false);
  });

  it('subscribes two symbols found by search, and their prices move with up/down flashes', async () => {
    await addBySearch('relia', 'NSE:RELIANCE');
    await addBySearch('tcs', 'NSE:TCS');
    const first = {
      reliance: await until(() => ltpCell('NSE:RELIANCE').textContent(), (t) => PRICE.test(t ?? '')),
      tcs: await until(() => ltpCell('NSE:TCS').textContent(), (t) => PRICE.test(t ?? '')),
    };
    // Read the cells again until the price has moved (the simulator trades 10 times a second).
    await until(() => ltpCell('NSE:RELIANCE').textContent(), (t) => PRICE.test(t ?? '') && t !== first.reliance);
    await until(() => ltpCell('NSE:TCS').textContent(), (t) => PRICE.test(t ?? '') && t !== first.tcs);
    await until(() => page.locator('#watch td.c-ltp.flash-up, #watch td.c-ltp.flash-down').count(), (n) => n > 0);
    const row = page.locator('#watch tr[data-instrument="NSE:RELIANCE"]');
    expect(await row.locator('td.c-vol').textContent()).toMatch(/^\d[\d,]*$/);
    expect(await row.locator('td.c-bid').textContent()).toMatch(PRICE);
    expect(await row.locator('td.c-ask').textContent()).toMatch(PRICE);
    expect(await row.locator('td.c-pct').textContent()).toMatch(/^([+\u2212]\d+\.\d{2}|0\.00)%$/);
    // The sparkline has a line once a second point is in (one a second).
    await until(() => row.locator('svg.spark path').getAttribute('d'), (d) => (d ?? '').startsWith('M'), 10_000);
    // Ticking ten times a second: a fresh age, no mark.
    expect(await ageOf('NSE:RELIANCE')).toMatch(/^\d\.\ds$/);
    expect(await markOf('NSE:RELIANCE')).toBe('');
    expect(await rowClass('NSE:RELIANCE')).not.toMatch(/row-(stale|feed-down|offline)/);
  });

  it('adds a typed EXCHANGE:SYMBOL, and shows why an unknown one failed', async () => {
    await page.fill('#search', 'NSE_INDEX:NIFTY');
    await page.locator('#search-results li').first().waitFor({ state: 'visible' });
    await page.press('#search', 'Enter');
    await until(() => ltpCell('NSE_INDEX:NIFTY').textContent(), (t) => PRICE.test(t ?? ''));

    await page.fill('#search', 'NSE:NOSUCHSYMBOL');
    await page.locator('#search-results li.none').waitFor({ state: 'visible' });
    await page.press('#search', 'Enter');
    await until(() => ltpCell('NSE:NOSUCHSYMBOL').textContent(), (t) => t === 'unavailable');
    expect(await page.locator('#watch-message').textContent()).toMatch(/^NSE:NOSUCHSYMBOL: .+/);
    await page.click('#watch tr[data-instrument="NSE:NOSUCHSYMBOL"] button.remove');
    expect(await page.locator('#watch tr[data-instrument="NSE:NOSUCHSYMBOL"]').count()).toBe(0);
  });

  it('opens the depth ladder of the selected symbol', async () => {
    await page.click('#watch tr[data-instrument="NSE:RELIANCE"] td.c-symbol');
    expect(await page.locator('#watch tr.selected').getAttribute('data-instrument')).toBe('NSE:RELIANCE');
    await until(() => page.locator('#depth-title').textContent(), (t) => (t ?? '').startsWith('NSE:RELIANCE'));
    await until(() => page.locator('#depth-body tr.depth-row').count(), (n) => n >= 5);
    // Both cells read from one rendering: two reads could straddle a tick that moved the book.
    const { bid, ask } = await page.locator('#depth-body tr.depth-row').first().evaluate((row) => {
      const price = (cell: string): number => Number((row.querySelector(cell)?.textContent ?? '').replace(/,/g, ''));
      return { bid: price('td.bid-price'), ask: price('td.ask-price') };
    });
    expect(bid).toBeGreaterThan(0);
    expect(ask).toBeGreaterThan(bid);
  });

  it('shows the gateway panel: this client among the clients, live adapter, the instance', async () => {
    const clients = await until(() => page.locator('#gw-clients').textContent(), (t) => /^\d+$/.test(t ?? ''));
    expect(Number(clients)).toBeGreaterThanOrEqual(1);
    expect(await page.locator('#gw-ready').textContent()).toBe('Ready');
    expect(await page.locator('#gw-adapters li[data-feed="simulator"]').textContent()).toContain('live');
    await until(() => page.locator('#gw-rate-out').textContent(), (t) => Number((t ?? '').replace(/,/g, '')) > 0);
    await until(() => page.locator('#gw-instances li').first().textContent(), (t) => (t ?? '').includes(`${gw.config.instance} · gateway`));
  });

  it('lists the recorded streams with their range, ticks and a live rate', async () => {
    const row = page.locator('#recorded tr[data-stream="simulator/NSE:RELIANCE"]');
    await row.waitFor({ timeout: 15_000 });
    expect(await page.locator('#recorded').isVisible()).toBe(true);
    expect(await page.locator('#recorded-summary').textContent()).toMatch(/^Recording · 1 day held$/);
    const time = '\\d{2}:\\d{2}:\\d{2}';
    expect(await row.locator('.c-range .range').textContent()).toMatch(new RegExp(`^${time} – ${time}$`));
    expect(await row.locator('.c-range .duration').textContent()).toMatch(/^\d+s$|^\d+m \d{2}s$/);
    const ticks = await until(() => row.locator('td.c-ticks').textContent(), (t) => Number((t ?? '').replace(/,/g, '')) > 0);
    expect(ticks).toMatch(/^\d[\d,]*$/);
    await until(() => row.locator('td.c-rate').textContent(), (t) => Number(t) > 0);
    // Sorted by feed, exchange, symbol.
    const streams = await page.locator('#recorded tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-stream')));
    expect(streams.indexOf('simulator/NSE:RELIANCE')).toBeLessThan(streams.indexOf('simulator/NSE:TCS'));
    // A click on Ticks sorts by ticks, most first.
    await page.click('#recorded th[data-sort="ticks"] button');
    expect(await page.locator('#recorded th[data-sort="ticks"]').getAttribute('aria-sort')).toBe('descending');
    const counts = await page.locator('#recorded tbody td.c-ticks').evaluateAll((cells) => cells.map((c) => Number((c.textContent ?? '').replace(/,/g, ''))));
    expect(counts).toEqual([...counts].sort((a, b) => b - a));
    await page.click('#recorded th[data-sort="stream"] button');
    expect(await page.locator('#recorded-notice').isVisible()).toBe(false);
  });

  it('keeps the session and the watchlist across a reload', async () => {
    await page.reload();
    await page.locator('#app-view').waitFor({ state: 'visible', timeout: 10_000 });
    const rows = await page.locator('#watch tbody tr').evaluateAll((elements) => elements.map((e) => e.getAttribute('data-instrument')));
    expect(rows).toEqual(['NSE:RELIANCE', 'NSE:TCS', 'NSE_INDEX:NIFTY']);
    await until(() => ltpCell('NSE:TCS').textContent(), (t) => PRICE.test(t ?? ''));
  });

  it('looks right (screenshot in test-artifacts/) and logged no errors', async () => {
    for (const [query, instrument] of [['hdfcb', 'NSE:HDFCBANK'], ['infy', 'NSE:INFY'], ['banknifty', 'NSE_INDEX:BANKNIFTY']] as const) {
      await addBySearch(query, instrument);
    }
    await page.click('#watch tr[data-instrument="NSE:RELIANCE"] td.c-symbol');
    await until(() => page.locator('#depth-body tr.depth-row').count(), (n) => n >= 5);
    // Let sparklines grow and catch a moment with a flash on screen.
    await new Promise((resolve) => setTimeout(resolve, 4000));
    await until(() => page.locator('#watch td.c-ltp.flash-up, #watch td.c-ltp.flash-down').count(), (n) => n > 0);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  });

  it('marks a symbol that stops ticking as stale, its age still growing; ticking again clears it', async () => {
    const simulator = gw.gateway.feeds.adapter('simulator')!;
    const infy = { exchange: 'NSE', symbol: 'INFY' };
    // Behind the gateway's back, so the feed stays live and only this stream goes quiet.
    await simulator.unsubscribe(infy);
    try {
      await until(() => rowClass('NSE:INFY'), (c) => c.includes('row-stale'), 15_000);
      expect(await markOf('NSE:INFY')).toBe('stale');
      const first = await ageOf('NSE:INFY');
      expect(first).toMatch(AGE);
      await until(() => ageOf('NSE:INFY'), (age) => age !== first && AGE.test(age ?? ''));
      expect(await rowClass('NSE:TCS')).not.toContain('row-stale');
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-stale.png'), fullPage: true });
    } finally {
      await simulator.subscribe(infy, 3, 5);
    }
    await until(() => rowClass('NSE:INFY'), (c) => !c.includes('row-stale'));
    expect(await markOf('NSE:INFY')).toBe('');
  });

  it('tells the user when the feed goes down, marks every row, and clears it all when the feed is back', async () => {
    const simulator = gw.gateway.feeds.adapter('simulator')!;
    const notice = page.locator('#feed-message');
    const pill = page.locator('#feed-state');
    const rows = () => page.locator('#watch tbody tr').evaluateAll((elements) => elements.map((e) => [e.getAttribute('data-instrument'), e.className]));
    expect(await notice.isVisible()).toBe(false);
    await simulator.stop();
    await until(() => notice.textContent(), (t) => t === 'Feed simulator is down. Prices shown may be stale.');
    expect(await notice.isVisible()).toBe(true);
    expect(await pill.textContent()).toBe('Feed down');
    expect(await pill.getAttribute('class')).toContain('pill-bad');
    for (const [instrument, className] of await rows()) {
      expect(className, instrument!).toContain('row-feed-down');
      expect(await markOf(instrument!)).toBe('feed down');
      expect(await ageOf(instrument!)).toMatch(AGE);
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-feed-down.png'), fullPage: true });

    await simulator.start();
    await gw.gateway.replay('simulator');
    await notice.waitFor({ state: 'hidden', timeout: 10_000 });
    expect(await pill.textContent()).toBe('Feed live');
    for (const [instrument, className] of await rows()) expect(className, instrument!).not.toContain('row-feed-down');
    const before = await ltpCell('NSE:RELIANCE').textContent();
    await until(() => ltpCell('NSE:RELIANCE').textContent(), (t) => PRICE.test(t ?? '') && t !== before);
    expect(pageErrors).toEqual([]);
  });
});

describe('a page of another origin', () => {
  it('reads the caller’s recorded streams and ticks with its key (CORS), and nothing that is not offered cross-origin', async () => {
    // A page served from elsewhere: another port is another origin to the browser.
    const other = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end('<!doctype html><title>strategy</title>');
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const strategy = await context.newPage();
    try {
      await strategy.goto(`http://127.0.0.1:${(other.address() as AddressInfo).port}/`);
      const answer = await strategy.evaluate(
        async ({ base, apiKey }) => {
          const streams = await fetch(`${base}/api/history/streams`, { headers: { 'x-api-key': apiKey } });
          const body = (await streams.json()) as { data: Array<{ exchange: string; symbol: string; ticks: number }> };
          const to = Date.now();
          const ticks = await fetch(`${base}/api/ticks?exchange=NSE&symbol=RELIANCE&from=${to - 3_600_000}&to=${to}`, { headers: { 'x-api-key': apiKey } });
          const lines = (await ticks.text()).trim().split('\n');
          let status: string;
          try {
            status = String((await fetch(`${base}/api/status`)).status);
          } catch (error) {
            status = `refused: ${(error as Error).name}`;
          }
          return { streams: streams.status, recorded: body.data.map((s) => `${s.exchange}:${s.symbol}`), ticks: ticks.status, lines: lines.length, first: lines[0], status };
        },
        { base: http.replace(/\/$/, ''), apiKey: key },
      );
      expect(answer.streams).toBe(200);
      expect(answer.recorded).toContain('NSE:RELIANCE');
      expect(answer.ticks).toBe(200);
      expect(answer.lines).toBeGreaterThan(1);
      expect(JSON.parse(answer.first!)).toMatchObject({ exchange: 'NSE', symbol: 'RELIANCE' });
      // The browser withholds what the gateway does not offer to other origins.
      expect(answer.status).toBe('refused: TypeError');
    } finally {
      await strategy.close();
      // The browser keeps its connection to the page's server alive: close it too.
      other.closeAllConnections();
      await new Promise((resolve) => other.close(resolve));
    }
  });
});
