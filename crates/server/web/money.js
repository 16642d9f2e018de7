// Money on the pages: the API counts in integer minor units of an ISO 4217 currency
// (500 usd = $5.00, 500 jpy = ¥500); people type and read major units. No floats touch an
// amount: typed text is converted digit by digit.

const ZERO_DECIMAL = new Set([
  'BIF', 'CLP', 'DJF', 'GNF', 'JPY', 'KMF', 'KRW', 'MGA', 'PYG', 'RWF', 'UGX', 'VND', 'VUV',
  'XAF', 'XOF', 'XPF',
]);
const THREE_DECIMAL = new Set(['BHD', 'JOD', 'KWD', 'OMR', 'TND']);

/** Digits after the decimal point of `currency` (the server's table): 0, 2 or 3. */
export function currencyExponent(currency) {
  const code = String(currency || '').toUpperCase();
  if (ZERO_DECIMAL.has(code)) return 0;
  if (THREE_DECIMAL.has(code)) return 3;
  return 2;
}

/** `amountMinor` in major units as plain text, e.g. for an input (`1250` usd → "12.50"). */
export function minorToMajorText(amountMinor, currency) {
  const exponent = currencyExponent(currency);
  const digits = String(Math.abs(Math.trunc(amountMinor))).padStart(exponent + 1, '0');
  const whole = digits.slice(0, digits.length - exponent);
  const fraction = exponent ? `.${digits.slice(digits.length - exponent)}` : '';
  return `${amountMinor < 0 ? '-' : ''}${whole}${fraction}`;
}

/** `amountMinor` of `currency` for people, e.g. `formatMoney(1250, 'usd')` → "$12.50". */
export function formatMoney(amountMinor, currency) {
  const code = String(currency || 'usd').toUpperCase();
  const exponent = currencyExponent(code);
  const decimal = minorToMajorText(amountMinor, code);
  try {
    const format = new Intl.NumberFormat(undefined, {
      style: 'currency',
      currency: code,
      minimumFractionDigits: exponent,
      maximumFractionDigits: exponent,
    });
    // `format` takes a decimal string exactly (no binary rounding) where supported.
    return format.format(decimal);
  } catch {
    return `${decimal} ${code}`;
  }
}

/**
 * Major units typed by a person (`"12"`, `"12.5"`, `"12.50"`) in minor units of `currency`.
 * Throws an Error with a message for people when the text is not such an amount.
 */
export function parseMajor(text, currency) {
  const exponent = currencyExponent(currency);
  const trimmed = String(text ?? '').trim().replace(',', '.');
  const match = /^(\d{1,9})(?:\.(\d*))?$/.exec(trimmed);
  if (!match) throw new Error('Enter an amount such as 5 or 4.50.');
  const fraction = match[2] || '';
  if (fraction.length > exponent) {
    throw new Error(
      exponent === 0
        ? `${String(currency).toUpperCase()} amounts are whole numbers.`
        : `At most ${exponent} digits after the decimal point.`,
    );
  }
  return Number(match[1]) * 10 ** exponent + Number(fraction.padEnd(exponent, '0') || 0);
}
