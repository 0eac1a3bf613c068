/**
 * Where a broker session's raw WebSocket messages go when frame recording is on
 * (TICKCAST_RECORD_FRAMES; history/frame-recorder.ts is the one implementation). Types only, so
 * the session knows nothing of the store behind it.
 */

/** One broker socket being recorded: every data message it receives or sends, as on the wire. */
export interface FrameConnection {
  /** `<feed>#<n>`, numbered per feed in this process; with its open time it names one socket. */
  readonly id: string;
  /**
   * Takes one message: `data` is copied before this returns (the caller may reuse it). Never
   * blocks, never throws.
   */
  frame(out: boolean, binary: boolean, data: Buffer | string): void;
}

export interface FrameSink {
  /** A socket of `broker`'s feed `feed` opened; undefined when that broker's frames are not recorded. */
  open(broker: string, feed: string, socket: string): FrameConnection | undefined;
}
