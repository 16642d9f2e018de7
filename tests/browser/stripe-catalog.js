// A stand-in for the two Stripe catalogue calls greenroom makes when a creator creates a paid
// pass (`POST /v1/products`, `POST /v1/prices`), answered with Stripe's JSON objects. Enough
// to make paid passes on a server started with a Stripe key; it sells nothing (no Checkout).
// The Rust integration tests have the full stand-in (crates/server/tests/stripe).

import crypto from 'node:crypto';
import http from 'node:http';

/** A secret key the server accepts (any `sk_test_...`). */
export const TEST_SECRET_KEY = 'sk_test_greenroom_browser';
export const TEST_WEBHOOK_SECRET = 'whsec_greenroom_browser';

const stripeId = (prefix) => `${prefix}${crypto.randomBytes(12).toString('hex')}`;

/** `metadata[key]=value` form fields as an object. */
function metadataOf(params) {
  const metadata = {};
  for (const [name, value] of params) {
    const key = /^metadata\[(.+)\]$/.exec(name);
    if (key) metadata[key[1]] = value;
  }
  return metadata;
}

function product(params, now) {
  return {
    id: stripeId('prod_'),
    object: 'product',
    active: true,
    created: now,
    default_price: null,
    description: null,
    images: [],
    livemode: false,
    marketing_features: [],
    metadata: metadataOf(params),
    name: params.get('name'),
    package_dimensions: null,
    shippable: null,
    statement_descriptor: null,
    tax_code: null,
    type: 'service',
    unit_label: null,
    updated: now,
    url: null,
  };
}

function price(params, now) {
  const interval = params.get('recurring[interval]');
  const amount = Number(params.get('unit_amount'));
  return {
    id: stripeId('price_'),
    object: 'price',
    active: true,
    billing_scheme: 'per_unit',
    created: now,
    currency: params.get('currency'),
    custom_unit_amount: null,
    livemode: false,
    lookup_key: null,
    metadata: metadataOf(params),
    nickname: null,
    product: params.get('product'),
    type: interval ? 'recurring' : 'one_time',
    recurring: interval
      ? {
          interval,
          interval_count: 1,
          meter: null,
          trial_period_days: null,
          usage_type: 'licensed',
        }
      : null,
    tax_behavior: 'unspecified',
    tiers_mode: null,
    transform_quantity: null,
    unit_amount: amount,
    unit_amount_decimal: String(amount),
  };
}

const MAKERS = { '/v1/products': product, '/v1/prices': price };

const stripeError = (message) => ({ error: { type: 'invalid_request_error', message } });

/** `[status, JSON]` for one request, as Stripe would answer it. */
function answer(method, path, headers, form) {
  if (headers.authorization !== `Bearer ${TEST_SECRET_KEY}`) {
    return [401, stripeError('Invalid API Key provided')];
  }
  const make = method === 'POST' && MAKERS[path];
  if (!make) return [404, stripeError(`Unrecognized request URL (${method}: ${path})`)];
  return [200, make(new URLSearchParams(form), Math.floor(Date.now() / 1000))];
}

/**
 * Starts the stand-in on a free loopback port. Returns `{ apiBase, requests, close() }`;
 * `requests` lists the calls made (`"POST /v1/products"`).
 */
export async function startStripeCatalog() {
  const requests = [];
  const server = http.createServer((req, res) => {
    let form = '';
    req.on('data', (chunk) => {
      form += chunk;
    });
    req.on('end', () => {
      const path = new URL(req.url, 'http://stripe.invalid').pathname;
      requests.push(`${req.method} ${path}`);
      const [status, json] = answer(req.method, path, req.headers, form);
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(json));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    apiBase: `http://127.0.0.1:${server.address().port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };
}
