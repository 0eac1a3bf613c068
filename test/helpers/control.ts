/** What the control-protocol tests share: reading a frame's JSON, and a transport a test can put itself in front of. */
import type { ControlTransport } from '../../src/control/transport.js';

/** The JSON of a frame (`<64 hex of MAC> <json>`), parsed. */
export function frameBody(frame: string | Buffer): Record<string, unknown> {
  return JSON.parse(frame.toString().slice(65)) as Record<string, unknown>;
}

/** Forwards everything to `inner`; a test overrides `send` to watch or drop the frames it sends. */
export class ForwardingTransport<T extends ControlTransport> implements ControlTransport {
  constructor(readonly inner: T) {}
  get endpoint(): string {
    return this.inner.endpoint;
  }
  get connected(): boolean {
    return this.inner.connected;
  }
  onFrame(handler: (from: string, data: Uint8Array) => void): void {
    this.inner.onFrame(handler);
  }
  onReconnect(handler: () => void): void {
    this.inner.onReconnect(handler);
  }
  send(to: string, frame: string): Promise<boolean> {
    return this.inner.send(to, frame);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
