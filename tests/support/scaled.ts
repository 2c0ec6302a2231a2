/**
 * Exact integer arithmetic for Decimal(20,8) values: numbers scaled by 1e8 as
 * BigInt. Tests judge the project's decimal code with it, sharing none of it.
 */
export const SCALE = 10n ** 8n;

export function toScaled(text: string): bigint {
  const negative = text.trim().startsWith('-');
  const [int, frac = ''] = text.trim().replace('-', '').split('.');
  const value = BigInt(int!) * SCALE + BigInt(frac.padEnd(8, '0').slice(0, 8));
  return negative ? -value : value;
}

export function fromScaled(value: bigint): string {
  const sign = value < 0n ? '-' : '';
  const abs = value < 0n ? -value : value;
  return `${sign}${abs / SCALE}.${(abs % SCALE).toString().padStart(8, '0')}`;
}
