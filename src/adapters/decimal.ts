/**
 * Broker prices arrive as integers in the segment's smallest unit. `scaleDecimal` turns one
 * into the number whose shortest decimal form is exactly the scaled value (295055, 2 → 2950.55):
 * the decimal string is built from the integer's digits, then read once, so no float division
 * rounding ever shows.
 */
export function scaleDecimal(raw: number | bigint, decimals: number): number {
  const negative = raw < 0;
  let digits = (negative ? -raw : raw).toString();
  if (decimals <= 0) return Number(negative ? '-' + digits : digits);
  digits = digits.padStart(decimals + 1, '0');
  const text = digits.slice(0, -decimals) + '.' + digits.slice(-decimals);
  return Number(negative ? '-' + text : text);
}
