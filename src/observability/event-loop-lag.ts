/**
 * Event-loop lag from `perf_hooks.monitorEventLoopDelay`: a libuv timer that records how late it
 * fires. Figures cover a window: a read returns the last complete window (at least `windowMs`
 * long; it ends at the first read after `windowMs` has passed), or, before one has completed,
 * everything since the start. So /metrics scrapes and /api/status polls see the same figures and
 * do not reset each other's.
 */
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

/** Lag in milliseconds: median, 99th percentile and worst over the window. */
export interface LagFigures {
  p50: number;
  p99: number;
  max: number;
}

export interface EventLoopLagOptions {
  /** Shortest window the figures cover (default 5 s). */
  windowMs?: number;
  /** Sampling period of the timer; also the smallest lag it can see (default 10 ms). */
  resolutionMs?: number;
  /** Monotonic milliseconds (default performance.now). */
  now?(): number;
}

export class EventLoopLag {
  private readonly histogram: IntervalHistogram;
  private readonly windowMs: number;
  private readonly resolutionMs: number;
  private readonly now: () => number;
  private windowStart: number;
  private last: LagFigures | undefined;

  constructor(options: EventLoopLagOptions = {}) {
    this.windowMs = options.windowMs ?? 5000;
    this.resolutionMs = options.resolutionMs ?? 10;
    this.now = options.now ?? (() => performance.now());
    this.histogram = monitorEventLoopDelay({ resolution: this.resolutionMs });
    this.histogram.enable();
    this.windowStart = this.now();
  }

  read(): LagFigures {
    const now = this.now();
    if (now - this.windowStart >= this.windowMs) {
      this.last = this.current();
      this.histogram.reset();
      this.windowStart = now;
    }
    return this.last ?? this.current();
  }

  /** Stops the timer (a gateway's stop). */
  close(): void {
    this.histogram.disable();
  }

  /** The histogram records the timer's whole period; the lag is what exceeds the resolution. */
  private current(): LagFigures {
    if (this.histogram.count === 0) return { p50: 0, p99: 0, max: 0 };
    const lag = (ns: number): number => Math.max(0, Math.round((ns / 1e6 - this.resolutionMs) * 1000) / 1000);
    return { p50: lag(this.histogram.percentile(50)), p99: lag(this.histogram.percentile(99)), max: lag(this.histogram.max) };
  }
}
