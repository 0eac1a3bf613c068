/**
 * The steps that undo a process's start, run last-first. A failing step is logged and the rest
 * still run, so a half-started process always releases what it took.
 */
import type { Logger } from './observability/logger.js';

export class Teardown {
  private readonly steps: Array<() => Promise<unknown> | unknown> = [];
  private running: Promise<void> | undefined;

  constructor(private readonly logger: Logger) {}

  add(step: () => Promise<unknown> | unknown): void {
    this.steps.push(step);
  }

  /** Runs every step once; later calls return the same promise. */
  run(): Promise<void> {
    return (this.running ??= (async () => {
      for (const step of this.steps.reverse()) {
        try {
          await step();
        } catch (error) {
          this.logger.warn({ err: (error as Error).message }, 'shutdown step failed');
        }
      }
    })());
  }
}
