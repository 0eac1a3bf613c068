/**
 * The market watch table: one row per watched instrument, cells updated in place (text only
 * when it changed), the LTP cell flashing green or red as the price moves, a sparkline of the
 * last minute, and the age of the last tick with a mark when the price cannot be trusted (stale,
 * feed down, no connection). Rendering is batched to one pass per animation frame, however fast
 * ticks come; ages are refreshed by `refresh`, which the page calls on a timer.
 */
import { flash, h, setText, svg } from './dom.js';
import { direction, formatChange, formatInteger, formatPercent, formatPrice } from './format.js';
import { type Instrument, instrumentKey } from './instrument.js';
import type { Quote } from './quote.js';
import { PriceSeries, sparklinePath } from './sparkline.js';
import { ROW_CLASSES, type RowContext, rowLook } from './staleness.js';

const SPARK_WIDTH = 100;
const SPARK_HEIGHT = 24;

interface Row {
  instrument: Instrument;
  element: HTMLTableRowElement;
  cells: Record<'ltp' | 'chg' | 'pct' | 'vol' | 'bid' | 'ask', HTMLTableCellElement>;
  age: HTMLElement;
  mark: HTMLElement;
  spark: SVGSVGElement;
  sparkPath: SVGPathElement;
  series: PriceSeries;
  quote: Quote | undefined;
  shownLtp: number | undefined;
  /** When the last tick arrived (the page's clock, ms). */
  lastTickAt: number | undefined;
  dirty: boolean;
}

export interface WatchViewEvents {
  select(instrument: Instrument): void;
  remove(instrument: Instrument): void;
}

export class WatchView {
  private readonly rows = new Map<string, Row>();
  private frame = 0;
  private context: RowContext = { now: 0, feedDown: undefined, connected: true };

  constructor(
    private readonly body: HTMLTableSectionElement,
    private readonly empty: HTMLElement,
    private readonly events: WatchViewEvents,
  ) {}

  has(instrument: Instrument): boolean {
    return this.rows.has(instrumentKey(instrument));
  }

  add(instrument: Instrument): void {
    const key = instrumentKey(instrument);
    if (this.rows.has(key)) return;
    const cell = (name: string): HTMLTableCellElement => h('td', { class: `c-${name}`, text: '—' });
    const cells = { ltp: cell('ltp'), chg: cell('chg'), pct: cell('pct'), vol: cell('vol'), bid: cell('bid'), ask: cell('ask') };
    const age = h('span', { class: 'age', text: '—' });
    const mark = h('span', { class: 'mark' });
    const sparkPath = svg('path');
    const spark = svg('svg', { class: 'spark flat', viewBox: `0 0 ${SPARK_WIDTH} ${SPARK_HEIGHT}`, 'aria-hidden': 'true' });
    spark.append(sparkPath);
    const remove = h('button', { class: 'remove', text: '×', attrs: { type: 'button', 'aria-label': `Remove ${key}`, title: 'Remove' } });
    remove.addEventListener('click', (event) => {
      event.stopPropagation();
      this.events.remove(instrument);
    });
    const element = h(
      'tr',
      { attrs: { 'data-instrument': key, tabindex: '0' } },
      h('td', { class: 'c-symbol' }, h('span', { class: 'sym', text: instrument.symbol }), h('span', { class: 'exch', text: instrument.exchange })),
      cells.ltp,
      cells.chg,
      cells.pct,
      cells.vol,
      cells.bid,
      cells.ask,
      h('td', { class: 'c-age' }, age, mark),
      h('td', { class: 'c-spark' }, spark),
      h('td', { class: 'c-remove center' }, remove),
    );
    element.addEventListener('click', () => this.events.select(instrument));
    element.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') this.events.select(instrument);
      if (event.key === 'Delete') this.events.remove(instrument);
    });
    this.body.append(element);
    const row: Row = { instrument, element, cells, age, mark, spark, sparkPath, series: new PriceSeries(), quote: undefined, shownLtp: undefined, lastTickAt: undefined, dirty: false };
    this.rows.set(key, row);
    this.showAge(row);
    this.empty.hidden = true;
  }

  remove(instrument: Instrument): void {
    const key = instrumentKey(instrument);
    this.rows.get(key)?.element.remove();
    this.rows.delete(key);
    this.empty.hidden = this.rows.size > 0;
  }

  /** Marks a row as failed (an unknown symbol, say); the message shows in its LTP cell. */
  fail(instrument: Instrument, message: string): void {
    const row = this.rows.get(instrumentKey(instrument));
    if (!row) return;
    row.element.classList.add('row-error');
    row.element.classList.remove(...ROW_CLASSES);
    row.cells.ltp.title = message;
    setText(row.cells.ltp, 'unavailable');
    setText(row.age, '—');
    row.mark.hidden = true;
  }

  select(instrument: Instrument | undefined): void {
    const key = instrument && instrumentKey(instrument);
    for (const [k, row] of this.rows) row.element.classList.toggle('selected', k === key);
  }

  /**
   * Redraws every row's age and mark for this moment, feed state and connection. Called on a
   * timer, so a stream that stops ticking visibly ages, and whenever the feed or connection changes.
   */
  refresh(context: RowContext): void {
    this.context = context;
    for (const row of this.rows.values()) this.showAge(row);
  }

  private showAge(row: Row): void {
    if (row.element.classList.contains('row-error')) return;
    const look = rowLook(row.lastTickAt, this.context);
    setText(row.age, look.age);
    setText(row.mark, look.mark);
    row.mark.hidden = look.mark === '';
    for (const name of ROW_CLASSES) row.element.classList.toggle(name, name === look.rowClass);
  }

  update(instrument: Instrument, quote: Quote, nowMs: number): void {
    const row = this.rows.get(instrumentKey(instrument));
    if (!row) return;
    row.quote = quote;
    row.lastTickAt = nowMs;
    // The tick's own moment: a refresh may not have run since the page woke up.
    if (nowMs > this.context.now) this.context = { ...this.context, now: nowMs };
    if (quote.ltp !== undefined) row.series.add(quote.ltp, nowMs);
    row.dirty = true;
    if (this.frame === 0) this.frame = requestAnimationFrame(() => this.render());
  }

  private render(): void {
    this.frame = 0;
    for (const row of this.rows.values()) {
      if (!row.dirty || !row.quote) continue;
      row.dirty = false;
      const q = row.quote;
      const { cells } = row;
      row.element.classList.remove('row-error');
      this.showAge(row);
      const moved = direction(row.shownLtp, q.ltp);
      row.shownLtp = q.ltp;
      setText(cells.ltp, formatPrice(q.ltp));
      if (moved !== 0) flash(cells.ltp, moved > 0 ? 'flash-up' : 'flash-down');
      const sign = q.change === undefined || q.change === 0 ? '' : q.change > 0 ? 'up' : 'down';
      for (const cell of [cells.chg, cells.pct]) {
        cell.classList.toggle('up', sign === 'up');
        cell.classList.toggle('down', sign === 'down');
      }
      setText(cells.chg, formatChange(q.change));
      setText(cells.pct, formatPercent(q.changePercent));
      setText(cells.vol, formatInteger(q.volume));
      setText(cells.bid, formatPrice(q.bid?.price));
      setText(cells.ask, formatPrice(q.ask?.price));
      const points = row.series.points();
      row.sparkPath.setAttribute('d', sparklinePath(points, SPARK_WIDTH, SPARK_HEIGHT));
      const first = points[0];
      const last = points[points.length - 1];
      const trend = first === undefined || last === undefined || first === last ? 'flat' : last > first ? 'up' : 'down';
      row.spark.setAttribute('class', `spark ${trend}`);
    }
  }
}
