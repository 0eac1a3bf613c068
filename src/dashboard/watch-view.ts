/**
 * The market watch table: one row per watched instrument, cells updated in place (text only
 * when it changed), the LTP cell flashing green or red as the price moves, and a sparkline of
 * the last minute. Rendering is batched to one pass per animation frame, however fast ticks come.
 */
import { flash, h, setText, svg } from './dom.js';
import { direction, formatChange, formatInteger, formatPercent, formatPrice } from './format.js';
import { type Instrument, instrumentKey } from './instrument.js';
import type { Quote } from './quote.js';
import { PriceSeries, sparklinePath } from './sparkline.js';

const SPARK_WIDTH = 100;
const SPARK_HEIGHT = 24;

interface Row {
  instrument: Instrument;
  element: HTMLTableRowElement;
  cells: Record<'ltp' | 'chg' | 'pct' | 'vol' | 'bid' | 'ask', HTMLTableCellElement>;
  spark: SVGSVGElement;
  sparkPath: SVGPathElement;
  series: PriceSeries;
  quote: Quote | undefined;
  shownLtp: number | undefined;
  dirty: boolean;
}

export interface WatchViewEvents {
  select(instrument: Instrument): void;
  remove(instrument: Instrument): void;
}

export class WatchView {
  private readonly rows = new Map<string, Row>();
  private frame = 0;

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
      h('td', { class: 'c-spark' }, spark),
      h('td', { class: 'c-remove center' }, remove),
    );
    element.addEventListener('click', () => this.events.select(instrument));
    element.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') this.events.select(instrument);
      if (event.key === 'Delete') this.events.remove(instrument);
    });
    this.body.append(element);
    this.rows.set(key, { instrument, element, cells, spark, sparkPath, series: new PriceSeries(), quote: undefined, shownLtp: undefined, dirty: false });
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
    row.cells.ltp.title = message;
    setText(row.cells.ltp, 'unavailable');
  }

  select(instrument: Instrument | undefined): void {
    const key = instrument && instrumentKey(instrument);
    for (const [k, row] of this.rows) row.element.classList.toggle('selected', k === key);
  }

  update(instrument: Instrument, quote: Quote, nowMs: number): void {
    const row = this.rows.get(instrumentKey(instrument));
    if (!row) return;
    row.quote = quote;
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
