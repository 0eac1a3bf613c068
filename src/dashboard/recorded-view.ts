/**
 * The "Recorded" card: the caller's recorded streams (recorded.ts makes the rows) in a table
 * sorted by a click on a column's head (again: the other way), the store's line above it and a
 * notice when there is nothing to list. Rows are redrawn on each answer, text only where it changed.
 */
import type { RecordedAnswer } from './recorded.js';
import { DEFAULT_SORT, type RecordedLook, type RecordedRow, type Sort, type SortKey, recordedLook } from './recorded.js';
import { h, setText } from './dom.js';

interface Row {
  element: HTMLTableRowElement;
  range: HTMLElement;
  duration: HTMLElement;
  ticks: HTMLTableCellElement;
  rate: HTMLTableCellElement;
}

export class RecordedView {
  private sort: Sort = DEFAULT_SORT;
  private answer: RecordedAnswer | undefined;
  private readonly rows = new Map<string, Row>();

  constructor(
    private readonly table: HTMLTableElement,
    private readonly summary: HTMLElement,
    private readonly notice: HTMLElement,
  ) {
    for (const head of table.querySelectorAll<HTMLElement>('th[data-sort]')) {
      const key = head.dataset.sort as SortKey;
      const button = h('button', { class: 'sort', text: head.textContent ?? '', attrs: { type: 'button' } });
      button.addEventListener('click', () => {
        this.sort = { key, descending: this.sort.key === key ? !this.sort.descending : key !== 'stream' };
        this.render();
      });
      head.replaceChildren(button);
    }
    this.markSort();
  }

  show(answer: RecordedAnswer): void {
    this.answer = answer;
    this.render();
  }

  /** The list could not be fetched: say why, and keep the last rows (marked stale). */
  showUnavailable(message: string): void {
    setText(this.notice, `Recorded streams unavailable: ${message}`);
    this.notice.hidden = false;
    this.table.classList.add('stale');
  }

  private render(): void {
    this.markSort();
    if (!this.answer) return;
    const look: RecordedLook = recordedLook(this.answer, this.sort, { now: Date.now() });
    this.table.classList.remove('stale');
    setText(this.summary, look.summary);
    setText(this.notice, look.notice);
    this.notice.hidden = look.notice === '';
    this.table.hidden = look.rows.length === 0;
    const body = this.table.tBodies[0]!;
    const keep = new Set(look.rows.map((r) => r.key));
    for (const [key, row] of this.rows) {
      if (!keep.has(key)) {
        row.element.remove();
        this.rows.delete(key);
      }
    }
    // In the sorted order: append moves an existing row to its place.
    for (const data of look.rows) body.append(this.update(data));
  }

  private update(data: RecordedRow): HTMLTableRowElement {
    let row = this.rows.get(data.key);
    if (!row) {
      const range = h('span', { class: 'range' });
      const duration = h('span', { class: 'duration' });
      row = {
        element: h(
          'tr',
          { attrs: { 'data-stream': data.key } },
          h('td', { class: 'c-symbol' }, h('span', { class: 'sym', text: data.symbol }), h('span', { class: 'exch', text: data.exchange }), h('span', { class: 'feed', text: data.feed })),
          h('td', { class: 'c-range' }, range, duration),
          h('td', { class: 'c-ticks' }),
          h('td', { class: 'c-rate' }),
        ),
        range,
        duration,
        ticks: undefined as unknown as HTMLTableCellElement,
        rate: undefined as unknown as HTMLTableCellElement,
      };
      row.ticks = row.element.cells[2]!;
      row.rate = row.element.cells[3]!;
      this.rows.set(data.key, row);
    }
    setText(row.range, data.range);
    row.range.title = data.rangeTitle;
    setText(row.duration, data.duration);
    setText(row.ticks, data.ticks);
    setText(row.rate, data.rate);
    row.element.classList.toggle('idle', !data.live);
    return row.element;
  }

  private markSort(): void {
    for (const head of this.table.querySelectorAll<HTMLElement>('th[data-sort]')) {
      const sorted = head.dataset.sort === this.sort.key;
      head.setAttribute('aria-sort', sorted ? (this.sort.descending ? 'descending' : 'ascending') : 'none');
    }
  }
}
