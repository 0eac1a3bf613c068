/**
 * Texts that mean "these credentials are refused" (not, say, one bad instrument): OpenAlgo's
 * is_auth_error list, shared by every broker, plus the broker's own wording.
 */
const COMMON = String.raw`\b40[13]\b|unauthori[sz]ed|forbidden|auth(?:entication)? failed|invalid token|token expired|access denied|invalid credentials|session expired`;

export function authErrorPattern(brokerWording?: RegExp): RegExp {
  return new RegExp(brokerWording ? `${COMMON}|${brokerWording.source}` : COMMON, 'i');
}
