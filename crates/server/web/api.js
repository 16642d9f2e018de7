// greenroom JSON API client shared by the pages.
//
// Every call is same-origin: a signed-in page is authenticated by the `greenroom_session`
// cookie the server set at sign-in, so no token is kept in the page. Errors come back as
// `GreenroomError` with the server's `{"error":{"code","message"}}`.

/** An error answered by the server (`{"error":{"code","message"}}`) or by the network. */
export class GreenroomError extends Error {
  constructor(message, { status = 0, code = 'network' } = {}) {
    super(message);
    this.name = 'GreenroomError';
    this.status = status;
    this.code = code;
  }
}

/** Turns a non-2xx response into a GreenroomError with the server's message. */
export async function errorFromResponse(response) {
  let code = `http_${response.status}`;
  let message = `${response.status} ${response.statusText}`.trim();
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    }
  } catch {
    // Not JSON: keep the status line.
  }
  return new GreenroomError(message, { status: response.status, code });
}

/**
 * One API call. `body` (if any) is sent as JSON. Resolves to `{status, headers, body}` (the
 * body parsed when it is JSON, `null` when empty); rejects with a GreenroomError otherwise.
 */
export async function apiRequest(method, path, body) {
  const init = { method, credentials: 'same-origin', cache: 'no-store', headers: {} };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new GreenroomError(`cannot reach the server (${err.message})`);
  }
  if (!response.ok) throw await errorFromResponse(response);
  const text = await response.text();
  let parsed = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new GreenroomError(`the server answered ${method} ${path} with something not JSON`, {
        status: response.status,
        code: 'invalid_answer',
      });
    }
  }
  return { status: response.status, headers: response.headers, body: parsed };
}

/** One API call; resolves to the parsed body. */
export async function api(method, path, body) {
  return (await apiRequest(method, path, body)).body;
}

/** `encodeURIComponent` for one path segment. */
export const segment = (value) => encodeURIComponent(String(value));

/** The signed-in account (`GET /api/v1/me`), or `null` when nobody is signed in. */
export async function currentAccount() {
  try {
    return await api('GET', '/api/v1/me');
  } catch (err) {
    if (err.status === 401) return null;
    throw err;
  }
}

/** Ends the page session and clears its cookie. */
export async function signOut() {
  try {
    await api('DELETE', '/api/v1/sessions/current');
  } catch (err) {
    if (err.status !== 401) throw err; // already signed out
  }
}

const FRIENDLY = {
  payments_disabled:
    'Payments are not set up on this server yet, so nothing can be bought right now.',
  creator_not_connected:
    'The creator cannot receive payments yet (no Stripe account connected), so this cannot ' +
    'be bought right now.',
  unauthorized: 'Sign in first.',
};

/** What to tell a person about a failed call: the server's message, kinder for a few codes. */
export function describeError(err) {
  if (!err) return 'Something went wrong.';
  const text = FRIENDLY[err.code] || err.message || String(err);
  return text.charAt(0).toUpperCase() + text.slice(1);
}
