// The pages' money module (crates/server/web/money.js), run in node: it touches no DOM. Typed
// major units must become the exact minor units the API counts in, digit by digit.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  currencyExponent,
  formatMoney,
  minorToMajorText,
  parseMajor,
} from '../../crates/server/web/money.js';

describe('money on the pages', () => {
  it('knows the exponents the server uses', () => {
    assert.equal(currencyExponent('usd'), 2);
    assert.equal(currencyExponent('EUR'), 2);
    assert.equal(currencyExponent('jpy'), 0);
    assert.equal(currencyExponent('kwd'), 3);
  });

  it('turns typed major units into exact minor units', () => {
    assert.equal(parseMajor('5', 'usd'), 500);
    assert.equal(parseMajor(' 4.5 ', 'usd'), 450);
    assert.equal(parseMajor('0.29', 'usd'), 29); // 0.29 * 100 is 28.999… in floating point
    assert.equal(parseMajor('1,05', 'eur'), 105);
    assert.equal(parseMajor('500', 'jpy'), 500);
    assert.equal(parseMajor('1.234', 'kwd'), 1234);
    assert.equal(parseMajor('12.', 'usd'), 1200);
  });

  it('refuses what is not an amount of the currency', () => {
    for (const [text, currency] of [
      ['', 'usd'],
      ['abc', 'usd'],
      ['-5', 'usd'],
      ['1e3', 'usd'],
      ['1.234', 'usd'],
      ['5.5', 'jpy'],
    ]) {
      assert.throws(() => parseMajor(text, currency), Error, `${JSON.stringify(text)} ${currency}`);
    }
  });

  it('shows minor units as major units', () => {
    assert.equal(minorToMajorText(1250, 'usd'), '12.50');
    assert.equal(minorToMajorText(5, 'usd'), '0.05');
    assert.equal(minorToMajorText(-5, 'usd'), '-0.05');
    assert.equal(minorToMajorText(500, 'jpy'), '500');
    assert.equal(minorToMajorText(1234, 'kwd'), '1.234');
    const shown = formatMoney(1500, 'usd');
    assert.ok(shown.includes('15.00') && shown.includes('$'), shown);
  });
});
