/**
 * The gateway panel: clients, message rates, latency, adapters and their status (from
 * `/api/status` and `/metrics`), and the instance's gateways and adapters (from `/api/instances`).
 */
import type { GatewayStatus, InstanceEntry } from './api.js';
import { byId, h, setText } from './dom.js';
import { formatInteger, formatMillis, formatRate, formatUptime } from './format.js';

export interface Rates {
  messagesOut: number | undefined;
  ticksIn: number | undefined;
  /** Publish-to-send latency over the last interval, milliseconds. */
  latencyP50: number | undefined;
  latencyP99: number | undefined;
}

const STATUS_PILL: Record<string, string> = { live: 'pill-ok', reconnecting: 'pill-warn', stale: 'pill-warn', down: 'pill-bad' };

function pill(text: string, kind: string): HTMLElement {
  return h('span', { class: `pill ${kind}`, text });
}

export class GatewayView {
  private readonly cells = {
    clients: byId('gw-clients'),
    authenticated: byId('gw-authenticated'),
    rateOut: byId('gw-rate-out'),
    rateIn: byId('gw-rate-in'),
    p50: byId('gw-latency-p50'),
    p99: byId('gw-latency-p99'),
    streams: byId('gw-streams'),
    lag: byId('gw-lag'),
    memory: byId('gw-memory'),
    uptime: byId('gw-uptime'),
  };
  private readonly ready = byId('gw-ready');
  private readonly adapters = byId<HTMLUListElement>('gw-adapters');
  private readonly instances = byId<HTMLUListElement>('gw-instances');

  showStatus(status: GatewayStatus, rates: Rates): void {
    const c = this.cells;
    setText(c.clients, formatInteger(status.connections));
    setText(c.authenticated, formatInteger(status.authenticated));
    setText(c.rateOut, formatRate(rates.messagesOut));
    setText(c.rateIn, formatRate(rates.ticksIn));
    setText(c.p50, formatMillis(rates.latencyP50));
    setText(c.p99, formatMillis(rates.latencyP99));
    setText(c.streams, formatInteger(status.streams));
    setText(c.lag, formatMillis(status.event_loop_lag_ms?.p99));
    setText(c.memory, status.rss_mb === undefined ? '—' : `${Math.round(status.rss_mb)} MB`);
    setText(c.uptime, formatUptime(status.uptime_s));
    this.ready.className = `pill ${status.ready ? 'pill-ok' : 'pill-bad'}`;
    setText(this.ready, status.ready ? 'Ready' : 'Not ready');

    const adapters = status.adapters ?? [];
    this.adapters.replaceChildren(
      ...(adapters.length === 0
        ? [h('li', { class: 'none', text: 'No adapters: fed by external publishers on the bus.' })]
        : adapters.map((a) =>
            h(
              'li',
              { attrs: { 'data-feed': a.feed } },
              h('span', { class: 'grow' }, h('span', { class: 'name', text: a.feed }), h('span', { class: 'detail', text: `broker ${a.broker}` })),
              pill(a.status, STATUS_PILL[a.status] ?? 'pill-idle'),
            ),
          )),
    );
  }

  showUnreachable(message: string): void {
    this.ready.className = 'pill pill-bad';
    setText(this.ready, 'Unreachable');
    this.ready.title = message;
  }

  showInstances(entries: readonly InstanceEntry[] | string): void {
    if (typeof entries === 'string') {
      this.instances.replaceChildren(h('li', { class: 'none', text: entries }));
      return;
    }
    if (entries.length === 0) {
      this.instances.replaceChildren(h('li', { class: 'none', text: 'The registry lists nothing of this instance.' }));
      return;
    }
    this.instances.replaceChildren(
      ...entries.map((e) =>
        h(
          'li',
          {},
          h(
            'span',
            { class: 'grow' },
            // An adapter is named by its feed, a gateway node by its node name; a lone gateway by the instance's.
            h('span', { class: 'name', text: `${e.instance} · ${e.role}${e.role === 'adapter' || e.name !== e.instance ? ` ${e.name}` : ''}` }),
            h('span', { class: 'detail', text: e.url ?? '' }),
          ),
          pill(e.alive ? 'alive' : 'stale', e.alive ? 'pill-ok' : 'pill-bad'),
        ),
      ),
    );
  }
}
