/**
 * The depth ladder of the selected instrument: five (or more) levels a side with quantity bars,
 * a summary of the day (OHLC, average price, spread), and the book's total quantities.
 */
import { h } from './dom.js';
import { formatChange, formatInteger, formatPercent, formatPrice } from './format.js';
import { type Instrument, instrumentKey } from './instrument.js';
import { type DepthLevel, type Quote, spread } from './quote.js';

export class DepthView {
  private instrument: Instrument | undefined;
  private frame = 0;
  private latest: Quote | undefined;

  constructor(
    private readonly title: HTMLElement,
    private readonly body: HTMLElement,
  ) {
    this.clear();
  }

  get selected(): Instrument | undefined {
    return this.instrument;
  }

  show(instrument: Instrument, quote: Quote | undefined): void {
    this.instrument = instrument;
    this.latest = quote;
    this.render();
  }

  clear(): void {
    this.instrument = undefined;
    this.latest = undefined;
    this.title.replaceChildren('Select a symbol');
    this.body.replaceChildren(h('p', { class: 'empty', text: 'Click a row of the market watch to see its order book.' }));
  }

  update(instrument: Instrument, quote: Quote): void {
    if (!this.instrument || instrumentKey(instrument) !== instrumentKey(this.instrument)) return;
    this.latest = quote;
    if (this.frame === 0) this.frame = requestAnimationFrame(() => this.render());
  }

  private render(): void {
    this.frame = 0;
    const instrument = this.instrument;
    if (!instrument) return;
    const q = this.latest;
    const changeClass = q?.change === undefined || q.change === 0 ? '' : q.change > 0 ? 'up' : 'down';
    this.title.replaceChildren(
      h('span', { class: 'sym', text: instrumentKey(instrument) }),
      h('span', { text: formatPrice(q?.ltp) }),
      ' ',
      h('span', { class: changeClass, text: `${formatChange(q?.change)} (${formatPercent(q?.changePercent)})` }),
    );
    const summary = h(
      'dl',
      { class: 'depth-summary' },
      ...(
        [
          ['Open', formatPrice(q?.open)],
          ['High', formatPrice(q?.high)],
          ['Low', formatPrice(q?.low)],
          ['Prev close', formatPrice(q?.close)],
          ['Avg price', formatPrice(q?.averagePrice)],
          ['Spread', formatPrice(q && spread(q))],
        ] as const
      ).map(([label, value]) => h('div', {}, h('dt', { text: label }), h('dd', { text: value }))),
    );
    const buy = q?.depth?.buy ?? [];
    const sell = q?.depth?.sell ?? [];
    if (buy.length === 0 && sell.length === 0) {
      this.body.replaceChildren(summary, h('p', { class: 'depth-note', text: q ? 'No order book for this instrument (indices have none).' : 'Waiting for the first tick…' }));
      return;
    }
    const rows = Math.max(buy.length, sell.length, 5);
    const largest = Math.max(1, ...buy.map((l) => l.quantity), ...sell.map((l) => l.quantity));
    const bar = (side: 'bid' | 'ask', level: DepthLevel | undefined): HTMLElement => {
      const element = h('span', { class: `bar ${side}-bar` });
      element.style.width = `${level ? Math.round((level.quantity / largest) * 100) : 0}%`;
      return element;
    };
    const body = h('tbody');
    for (let i = 0; i < rows; i++) {
      const b = buy[i];
      const s = sell[i];
      body.append(
        h(
          'tr',
          { class: 'depth-row' },
          h('td', { class: 'bid-orders', text: b?.orders === undefined ? '' : formatInteger(b.orders) }),
          h('td', { class: 'bid-qty' }, bar('bid', b), h('span', { class: 'val', text: b ? formatInteger(b.quantity) : '' })),
          h('td', { class: 'bid-price', text: b ? formatPrice(b.price) : '' }),
          h('td', { class: 'ask-price', text: s ? formatPrice(s.price) : '' }),
          h('td', { class: 'ask-qty' }, bar('ask', s), h('span', { class: 'val', text: s ? formatInteger(s.quantity) : '' })),
          h('td', { class: 'ask-orders', text: s?.orders === undefined ? '' : formatInteger(s.orders) }),
        ),
      );
    }
    const table = h(
      'table',
      { class: 'ladder' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { text: 'Orders' }),
          h('th', { text: 'Bid qty' }),
          h('th', { text: 'Bid' }),
          h('th', { class: 'ask', text: 'Ask' }),
          h('th', { class: 'ask', text: 'Ask qty' }),
          h('th', { class: 'ask', text: 'Orders' }),
        ),
      ),
      body,
      h(
        'tfoot',
        {},
        h(
          'tr',
          {},
          h('td', { text: 'Total' }),
          h('td', { text: formatInteger(q?.totalBuyQuantity) }),
          h('td'),
          h('td'),
          h('td', { class: 'ask-qty', text: formatInteger(q?.totalSellQuantity) }),
          h('td', { class: 'ask-orders', text: 'Total' }),
        ),
      ),
    );
    this.body.replaceChildren(summary, table);
  }
}
