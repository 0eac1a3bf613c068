/**
 * A worker's side of the instance's limits (instance-limits.ts): the per-key connection count and
 * the failed-key count, asked of the primary over the channel. When the primary cannot answer,
 * they refuse: a worker whose primary is gone is shutting down anyway.
 */
import type { ConnectionLedger, SharedAdmission, SharedFailedAuths } from '../gateway/limits.js';
import type { PrimaryChannel } from './channel.js';

/** Retry hint of a key check refused because the primary did not answer. */
const UNANSWERED_RETRY_MS = 1000;

export function primaryConnectionLedger(channel: PrimaryChannel): ConnectionLedger {
  return {
    reserve: async (user) => {
      const result = await channel.request({ type: 'key_reserve', user });
      // Unanswered: counted as over any limit, so nothing is held for it either.
      return result.ok && typeof result.held === 'number' ? result.held : Infinity;
    },
    release: (user) => channel.send({ type: 'key_release', user }),
  };
}

export function primaryFailedAuths(channel: PrimaryChannel): SharedFailedAuths {
  return {
    admit: async (address): Promise<SharedAdmission> => {
      const result = await channel.request({ type: 'auth_admit', address });
      const verdict = result.ok ? result.admission : undefined;
      if (!verdict) return { admitted: false, retryInMs: UNANSWERED_RETRY_MS };
      if (!verdict.admitted) return { admitted: false, retryInMs: typeof verdict.retryInMs === 'number' ? verdict.retryInMs : UNANSWERED_RETRY_MS };
      const { ticket } = verdict;
      return {
        admitted: true,
        settle: async (outcome) => {
          const settled = await channel.request({ type: 'auth_settle', ticket, outcome });
          return settled.ok && typeof settled.wait === 'number' ? settled.wait : 0;
        },
      };
    },
  };
}
