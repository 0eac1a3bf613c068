/**
 * A worker's side of the instance's limits (instance-limits.ts): the per-key connection count and
 * the failed-key count, asked of the primary over the channel. When the primary cannot answer,
 * they refuse: a worker whose primary is gone is shutting down anyway.
 */
import type { ConnectionLedger, SharedAdmission, SharedFailedAuths } from '../gateway/limits.js';
import type { PrimaryChannel } from './channel.js';

/** Retry hint of a key check refused because the primary did not answer. */
const UNANSWERED_RETRY_MS = 1000;

/**
 * Each reservation has an id of this ledger's, so the primary can give back exactly the one
 * released. `release(user)` gives back any of the user's counted reservations: they are alike.
 */
export function primaryConnectionLedger(channel: PrimaryChannel): ConnectionLedger {
  let nextReservation = 1;
  /** user → the ids of its reservations the primary counted and that are not released yet. */
  const counted = new Map<string, number[]>();
  const release = (reservation: number): void => {
    try {
      channel.send({ type: 'key_release', reservation });
    } catch {
      // The primary is gone, and with it every count.
    }
  };
  return {
    reserve: async (user) => {
      const reservation = nextReservation++;
      const result = await channel.request({ type: 'key_reserve', reservation, user });
      if (!result.ok || typeof result.held !== 'number') {
        // Unanswered: refused as over any limit. The primary may still count it when it gets to
        // it, so it is given back now (the primary undoes it if it counted it).
        release(reservation);
        return Infinity;
      }
      if (result.counted) {
        const ids = counted.get(user);
        if (ids) ids.push(reservation);
        else counted.set(user, [reservation]);
      }
      return result.held;
    },
    release: (user) => {
      const ids = counted.get(user);
      const reservation = ids?.pop();
      if (reservation === undefined) return;
      if (ids!.length === 0) counted.delete(user);
      release(reservation);
    },
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
