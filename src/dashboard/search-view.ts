/**
 * The symbol search box: asks `/api/symbols` as the user types (debounced, the previous request
 * aborted), lists the hits, and adds the chosen one to the watch. Arrow keys move, Enter adds
 * (a typed `EXCHANGE:SYMBOL` is added as is when nothing matches), Escape closes.
 */
import { type SymbolHit, searchSymbols } from './api.js';
import { h } from './dom.js';
import { type Instrument, instrumentKey, parseInstrument } from './instrument.js';

const DEBOUNCE_MS = 120;

export class SearchView {
  private hits: SymbolHit[] = [];
  private active = -1;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private inFlight: AbortController | undefined;

  constructor(
    private readonly input: HTMLInputElement,
    private readonly list: HTMLUListElement,
    private readonly apiKey: () => string,
    private readonly choose: (instrument: Instrument) => void,
    private readonly report: (message: string) => void,
  ) {
    input.addEventListener('input', () => this.schedule());
    input.addEventListener('focus', () => this.schedule());
    input.addEventListener('keydown', (event) => this.key(event));
    input.addEventListener('blur', () => setTimeout(() => this.close(), 150));
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.search(), DEBOUNCE_MS);
  }

  private async search(): Promise<void> {
    this.inFlight?.abort();
    const controller = new AbortController();
    this.inFlight = controller;
    const text = this.input.value;
    try {
      const hits = await searchSymbols(this.apiKey(), text, controller.signal);
      if (controller.signal.aborted || document.activeElement !== this.input) return;
      this.show(hits);
    } catch (error) {
      if (controller.signal.aborted) return;
      this.report(`Symbol search failed: ${(error as Error).message}`);
    }
  }

  private show(hits: SymbolHit[]): void {
    this.hits = hits;
    this.active = hits.length > 0 ? 0 : -1;
    const typed = parseInstrument(this.input.value);
    const items =
      hits.length > 0
        ? hits.map((hit, i) => {
            const item = h(
              'li',
              { attrs: { role: 'option', 'data-instrument': instrumentKey(hit), 'aria-selected': String(i === this.active) } },
              h('span', { class: 'sym', text: hit.symbol }),
              h('span', { class: 'meta', text: [hit.exchange, hit.kind, hit.name].filter(Boolean).join(' · ') }),
            );
            // mousedown, not click: it comes before the input's blur closes the list.
            item.addEventListener('mousedown', (event) => {
              event.preventDefault();
              this.pick(hit);
            });
            return item;
          })
        : [h('li', { class: 'none', text: typed ? `Press Enter to add ${instrumentKey(typed)}` : 'No matching symbols. Type EXCHANGE:SYMBOL to add any.' })];
    this.list.replaceChildren(...items);
    this.list.hidden = false;
    this.input.setAttribute('aria-expanded', 'true');
  }

  private key(event: KeyboardEvent): void {
    if (event.key === 'Escape') {
      this.close();
      return;
    }
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      if (this.hits.length === 0) return;
      const step = event.key === 'ArrowDown' ? 1 : -1;
      this.active = (this.active + step + this.hits.length) % this.hits.length;
      [...this.list.children].forEach((item, i) => item.setAttribute('aria-selected', String(i === this.active)));
      return;
    }
    if (event.key === 'Enter') {
      event.preventDefault();
      const hit = this.hits[this.active];
      if (hit) {
        this.pick(hit);
        return;
      }
      const typed = parseInstrument(this.input.value);
      if (typed) this.pick(typed);
      else if (this.input.value.trim() !== '') this.report('Type a symbol from the list, or EXCHANGE:SYMBOL (for example NSE:RELIANCE).');
    }
  }

  private pick(instrument: Instrument): void {
    this.choose({ exchange: instrument.exchange, symbol: instrument.symbol });
    this.input.value = '';
    this.close();
  }

  private close(): void {
    clearTimeout(this.timer);
    this.inFlight?.abort();
    this.list.hidden = true;
    this.hits = [];
    this.active = -1;
    this.input.setAttribute('aria-expanded', 'false');
  }
}
