/** The recorders' figures as `/api/status` shows them (snake case, as the rest of the page). Pure. */
import type { FrameFigures } from './frame-recorder.js';
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

/** `history.frames`: the raw broker frames recorded (TICKCAST_RECORD_FRAMES), when that is on. */
export function frameStatus(figures: FrameFigures): Record<string, unknown> {
  const { state, reason, brokers, recorded, written, shed, failed, recordedBytes, writtenBytes, queuedBytes, bytes, days, connections } = figures;
  return {
    state,
    ...(reason !== undefined ? { reason } : {}),
    record: brokers === 'all' ? 'on' : brokers,
    recorded,
    written,
    shed,
    failed,
    connections,
    bytes: { recorded: recordedBytes, written: writtenBytes, queued: queuedBytes },
    disk: { bytes, days },
  };
}

/** `/api/status`'s `history`: the tick recorder's figures and the frame recorder's, whichever run. */
export function historySection(ticks: RecorderFigures | undefined, frames: FrameFigures | undefined): Record<string, unknown> | undefined {
  if (!ticks && !frames) return undefined;
  return { ...(ticks ? historyStatus(ticks) : {}), ...(frames ? { frames: frameStatus(frames) } : {}) };
}
