/** The error the client SDK raises and emits: a code (ClientErrorCode or the gateway's) and a message. */
import type { ClientErrorCode, ProtocolErrorCode } from '../errors.js';
import type { ClientErrorShape } from './types.js';

export class TickcastClientError extends Error implements ClientErrorShape {
  constructor(
    readonly code: ClientErrorCode | ProtocolErrorCode | (string & {}),
    message: string,
  ) {
    super(message);
    this.name = 'TickcastClientError';
  }
}
