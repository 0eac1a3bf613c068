/**
 * The control protocol over NATS, for instances whose gateway nodes and adapters meet on a NATS
 * bus. Each process listens on its own inbox subject (`<prefix>.ctl.peer.<random>`) and sends
 * every frame with that inbox as the reply-to, which is how the receiver learns the sender's
 * address. Adapters announce on `<prefix>.ctl.announce`, which gateways listen to. A frame whose
 * reply-to is not a peer inbox of the instance is dropped: a sender must never steer our answers
 * onto tick or event subjects.
 */
import { randomBytes } from 'node:crypto';
import type { Msg, Subscription } from 'nats';
import type { NatsLink } from '../bus/nats.js';
import type { Subjects } from '../bus/subjects.js';
import type { AdapterTransport, ControlTransport } from './transport.js';

const PEER_TOKEN = /^[0-9a-f]{16}$/;

class NatsTransport implements ControlTransport {
  readonly inbox: string;
  readonly endpoint: string;
  protected handler: (from: string, data: Uint8Array) => void = () => {};
  private readonly subscriptions: Subscription[] = [];
  private readonly peerPrefix: string;

  constructor(
    protected readonly link: NatsLink,
    protected readonly subjects: Subjects,
    { announcements }: { announcements: boolean },
  ) {
    this.peerPrefix = subjects.controlPeer('');
    this.inbox = subjects.controlPeer(randomBytes(8).toString('hex'));
    this.endpoint = `${link.servers} (${this.inbox})`;
    const callback = (_err: unknown, msg: Msg): void => this.receive(msg);
    this.subscriptions.push(link.connection.subscribe(this.inbox, { callback }));
    if (announcements) this.subscriptions.push(link.connection.subscribe(subjects.announce, { callback }));
  }

  private receive(msg: Msg): void {
    const from = msg.reply;
    if (!from?.startsWith(this.peerPrefix) || !PEER_TOKEN.test(from.slice(this.peerPrefix.length)) || from === this.inbox) return;
    this.handler(from, msg.data);
  }

  get connected(): boolean {
    return this.link.connected;
  }

  onFrame(handler: (from: string, data: Uint8Array) => void): void {
    this.handler = handler;
  }

  onReconnect(handler: () => void): void {
    this.link.onReconnect(handler);
  }

  async send(to: string, frame: string): Promise<boolean> {
    return this.publish(to, frame);
  }

  protected publish(subject: string, frame: string): boolean {
    if (!this.link.connected) return false;
    try {
      this.link.connection.publish(subject, frame, { reply: this.inbox });
      return true;
    } catch {
      return false;
    }
  }

  /** Unsubscribes after the frames already published have reached the server; the link is its creator's to close. */
  async close(): Promise<void> {
    if (this.link.connection.isClosed()) return;
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    try {
      await this.link.connection.flush();
    } catch {
      // the link is going down anyway
    }
  }
}

/** A gateway node's end: its inbox, and the adapters' announcements. */
export class NatsGatewayTransport extends NatsTransport {
  constructor(link: NatsLink, subjects: Subjects) {
    super(link, subjects, { announcements: true });
  }
}

/** An adapter's end: its inbox; announcements go to every node. */
export class NatsAdapterTransport extends NatsTransport implements AdapterTransport {
  constructor(link: NatsLink, subjects: Subjects) {
    super(link, subjects, { announcements: false });
  }

  announce(frame: string): void {
    this.publish(this.subjects.announce, frame);
  }
}
