/** The recorder's figures as `/api/status` shows them (snake case, as the rest of the page). Pure. */
import type { RecorderFigures } from './recorder.js';

export function historyStatus(figures: RecorderFigures): Record<string, unknown> {
  const { state, reason, selection, recorded, written, shed, failed, queued, bytes, days, oldest, newest, holds } = figures;
  return {
    state,
    ...(reason !== undefined ? { reason } : {}),
    record: selection,
    ticks: { recorded, written, shed, failed, queued },
    disk: { bytes, days, ...(oldest ? { oldest } : {}), ...(newest ? { newest } : {}) },
    ...(holds ? { holds } : {}),
  };
}
