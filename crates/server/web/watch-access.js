// The watch page's accounts and commerce: the sign-in form, the access panel of a paid stream
// (the channel's passes, enrolment for wallet tokens, token packs), the tip box, and following
// a Stripe Checkout the viewer comes back from (`?checkout=ID[&cancelled=1]`).
//
// Buying anything sends the browser to Stripe's hosted page with `return_to` set to this
// page; nothing here grants access by itself: the server does, and the page asks it again.

import { api, describeError, segment } from '/static/api.js';
import { bindAccountForm } from '/static/account.js';
import { formatMoney, parseMajor } from '/static/money.js';
import { byId as $, element, showText } from '/static/ui.js';

const CHECKOUT_POLL_MS = 1500;
/** How long a completed payment is waited for before the page gives up asking. */
const CHECKOUT_FOLLOW_MS = 120_000;
const FALLBACK_CURRENCY = 'usd';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** This page without the checkout parameters: where Stripe sends the buyer back. */
export function returnPath() {
  const url = new URL(location.href);
  url.searchParams.delete('checkout');
  url.searchParams.delete('cancelled');
  return `${url.pathname}${url.search}`;
}

function passOffer(pass) {
  const price = formatMoney(pass.amount_minor, pass.currency);
  switch (pass.kind) {
    case 'free':
      return { terms: 'Free', action: 'Claim' };
    case 'monthly':
      return { terms: `${price} a month`, action: 'Subscribe' };
    case 'yearly':
      return { terms: `${price} a year`, action: 'Subscribe' };
    default:
      return { terms: `${price} once`, action: 'Buy' };
  }
}

/** Whether a pass (as listed publicly) gives access to `streamId`. */
const covers = (pass, streamId) =>
  pass.scope === 'channel' || (pass.stream_ids || []).includes(streamId);

/**
 * What the channel sells, read once per channel and shared by the panel and the tip box:
 * its active passes and the wallet's token packs.
 */
function catalog() {
  const passes = new Map(); // handle -> Promise<pass[]>
  let packs = null;
  return {
    passes(handle) {
      if (!passes.has(handle)) {
        const request = api('GET', `/api/v1/channels/${segment(handle)}/passes`).then(
          (body) => body.passes || [],
        );
        request.catch(() => passes.delete(handle)); // ask again next time
        passes.set(handle, request);
      }
      return passes.get(handle);
    },
    packs() {
      if (!packs) {
        packs = api('GET', '/api/v1/wallet/packs').then((body) => body.packs || []);
        packs.catch(() => {
          packs = null;
        });
      }
      return packs;
    },
  };
}

/**
 * The currency of tips. The API does not say which one the server takes tips in; token packs
 * are sold in it, and paid passes usually are.
 */
async function tipCurrency(shop, handle) {
  try {
    const packs = await shop.packs();
    if (packs.length) return packs[0].currency;
    const passes = handle ? await shop.passes(handle) : [];
    const paid = passes.find((p) => p.kind !== 'free');
    if (paid) return paid.currency;
  } catch {
    // Unknown: the usual default.
  }
  return FALLBACK_CURRENCY;
}

/**
 * The sign-in form, the access panel, the tip box and the checkout follow-up of the watch
 * page. The form shows to a signed-out viewer of a locked stream, or one who wants to tip.
 *
 * `onGranted()` is called when the viewer may now have access (a pass claimed, enrolled,
 * a purchase completed); `onSignedIn(account)` after signing in through the form;
 * `say(text)` shows a notice.
 */
export function createCommerce({ streamId, onGranted, onSignedIn, say }) {
  const ui = {
    panel: $('access'),
    reason: $('access-reason'),
    signin: $('signin-panel'),
    form: $('account-form'),
    passes: $('passes'),
    passesEmpty: $('passes-empty'),
    enroll: $('enroll'),
    enrollButton: $('enroll-button'),
    balance: $('wallet-balance'),
    packs: $('packs'),
    message: $('access-message'),
    tip: $('tip'),
    tipSignin: $('tip-signin'),
    tipSigninButton: $('tip-signin-button'),
    tipForm: $('tip-form'),
    tipCurrency: $('tip-currency'),
    tipError: $('tip-form').querySelector('[data-form-error]'),
  };
  const shop = catalog();
  let account = null;
  let stream = null; // the public status the panel was last shown for
  let currency = FALLBACK_CURRENCY;
  let wanted = false; // the page is locked: the panel shows once the stream is known
  let signInAsked = false; // the viewer asked for the sign-in form (to tip)
  let shown = 0; // bumps on every show/hide so late answers of an old render are dropped

  const accountForm = bindAccountForm(ui.form, { role: 'viewer', onSignedIn });

  const showMessage = (text) => showText(ui.message, text);

  /** The sign-in form shows to nobody signed in on a locked page, or who asked for it. */
  function syncSignIn() {
    ui.signin.hidden = Boolean(account) || !(wanted || signInAsked);
  }

  function focusSignIn() {
    ui.signin.scrollIntoView({ behavior: 'smooth', block: 'center' });
    ui.form.querySelector('input:not([hidden])')?.focus({ preventScroll: true });
  }

  function needSignIn() {
    showMessage('Sign in or create an account first.');
    focusSignIn();
  }

  /** Runs `action` with `button` disabled; its failure is shown in the panel. */
  async function withButton(button, action) {
    button.disabled = true;
    showMessage('');
    try {
      await action();
    } catch (err) {
      if (err.code === 'already_granted') onGranted();
      else showMessage(describeError(err));
    } finally {
      button.disabled = false;
    }
  }

  async function getPass(pass) {
    const answer = await api('POST', `/api/v1/passes/${segment(pass.id)}/checkout`, {
      return_to: returnPath(),
    });
    if (answer.grant) {
      say(`“${pass.name}” is yours.`);
      onGranted();
    } else if (answer.url) {
      say('Opening the payment page…');
      location.assign(answer.url);
    }
  }

  async function enroll() {
    try {
      const answer = await api('POST', `/api/v1/streams/${segment(streamId)}/enroll`);
      say(`Enrolled: ${answer.spent} tokens spent, ${answer.balance} left.`);
      onGranted();
    } catch (err) {
      if (err.code !== 'insufficient_tokens') throw err;
      const packs = await shop.packs();
      const next = packs.length
        ? 'Buy tokens below, then enrol.'
        : 'No token packs are on sale here right now.';
      showMessage(`${describeError(err)}. ${next}`);
    }
  }

  async function buyPack(pack) {
    const answer = await api('POST', '/api/v1/wallet/checkout', {
      pack: pack.id,
      return_to: returnPath(),
    });
    say('Opening the payment page…');
    location.assign(answer.url);
  }

  /** One offer of the panel: what, its terms, and a button that runs `action` when signed in. */
  function offer({ data, name, terms, label, primary, action }) {
    const button = element('button', {
      className: primary ? 'btn btn-primary' : 'btn btn-secondary',
      text: label,
      attrs: { type: 'button' },
    });
    button.addEventListener('click', () => {
      if (!account) return needSignIn();
      return withButton(button, action);
    });
    const what = element(
      'span',
      { className: 'offer-what' },
      element('strong', { text: name }),
      element('span', { className: 'muted', text: terms }),
    );
    return element('li', { className: 'offer', data }, what, button);
  }

  function renderPasses(passes) {
    ui.passes.replaceChildren(
      ...passes.map((pass) => {
        const { terms, action } = passOffer(pass);
        return offer({
          data: { passId: pass.id, kind: pass.kind },
          name: pass.name,
          terms,
          label: action,
          primary: pass.kind === 'free',
          action: () => getPass(pass),
        });
      }),
    );
    ui.passesEmpty.hidden = passes.length > 0;
  }

  function renderPacks(packs) {
    ui.packs.replaceChildren(
      ...packs.map((pack) =>
        offer({
          data: { packId: pack.id },
          name: `${pack.tokens} tokens`,
          terms: formatMoney(pack.amount_minor, pack.currency),
          label: 'Buy tokens',
          action: () => buyPack(pack),
        }),
      ),
    );
  }

  async function renderEnroll(mine) {
    const price = stream.price_tokens;
    ui.enroll.hidden = !Number.isFinite(price);
    if (ui.enroll.hidden) return;
    ui.enrollButton.textContent = `Enrol for ${price} tokens`;
    ui.balance.textContent = '';
    const [wallet, packs] = await Promise.all([
      account ? api('GET', '/api/v1/wallet?limit=1') : null,
      shop.packs(),
    ]);
    if (mine !== shown) return;
    if (wallet) ui.balance.textContent = `Your balance: ${wallet.balance} tokens.`;
    renderPacks(packs);
  }

  async function render() {
    const mine = ++shown;
    ui.reason.textContent = account
      ? 'This stream is for pass holders. Choose a pass or enrol with tokens to watch.'
      : 'This stream is for pass holders. Create an account or sign in, then choose a pass.';
    try {
      const passes = stream.channel ? await shop.passes(stream.channel) : [];
      if (mine !== shown) return;
      renderPasses(passes.filter((pass) => covers(pass, streamId)));
      await renderEnroll(mine);
    } catch (err) {
      if (mine === shown) showMessage(describeError(err));
    }
  }

  /** Tips go to a channel, while the stream is not over; sending one needs an account. */
  async function renderTipBox() {
    const open = stream.status !== 'ended' && stream.status !== 'cancelled';
    ui.tip.hidden = !(stream.channel && open);
    ui.tipSignin.hidden = Boolean(account);
    ui.tipForm.hidden = !account;
    if (ui.tip.hidden || !account) return;
    currency = await tipCurrency(shop, stream.channel);
    ui.tipCurrency.textContent = currency.toUpperCase();
  }

  ui.tipSigninButton.addEventListener('click', () => {
    signInAsked = true;
    syncSignIn();
    focusSignIn();
  });

  ui.enrollButton.addEventListener('click', () => {
    if (!account) return needSignIn();
    return withButton(ui.enrollButton, enroll);
  });

  ui.tipForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const submit = ui.tipForm.querySelector('button[type="submit"]');
    const showTipError = (text) => showText(ui.tipError, text);
    let amountMinor;
    try {
      amountMinor = parseMajor(ui.tipForm.elements.namedItem('amount').value, currency);
    } catch (err) {
      return showTipError(err.message);
    }
    const message = ui.tipForm.elements.namedItem('message').value.trim();
    submit.disabled = true;
    showTipError('');
    try {
      const answer = await api('POST', `/api/v1/streams/${segment(streamId)}/tips`, {
        amount_minor: amountMinor,
        ...(message ? { message } : {}),
        return_to: returnPath(),
      });
      say('Opening the payment page…');
      location.assign(answer.url);
    } catch (err) {
      showTipError(describeError(err));
    } finally {
      submit.disabled = false;
    }
  });

  function openPanel() {
    ui.panel.hidden = false;
    syncSignIn();
    showMessage('');
    render();
  }

  return {
    /** Shows the access panel (as soon as the stream's public status is known). */
    showPanel() {
      wanted = true;
      if (stream) openPanel();
    },
    hidePanel() {
      wanted = false;
      shown++;
      ui.panel.hidden = true;
      syncSignIn();
      showMessage('');
    },
    /** The signed-in account changed (`null`: signed out). */
    setAccount(next) {
      if (account && !next) accountForm.setMode('signin'); // signed out: back as someone known
      account = next;
      if (next) signInAsked = false;
      syncSignIn();
      if (stream && !ui.panel.hidden) render();
      if (stream) renderTipBox();
    },
    /** The stream's public status, on every poll. */
    setStream(status) {
      const changed =
        !stream || stream.status !== status.status || stream.channel !== status.channel;
      stream = status;
      if (wanted && ui.panel.hidden) openPanel();
      if (changed) renderTipBox();
    },
    /** Follows `?checkout=ID` after Stripe sent the viewer back; see `followCheckout`. */
    followCheckout() {
      const onTokens = () => {
        if (stream && !ui.panel.hidden) render(); // the new balance
      };
      return followCheckout({ say, onGranted, onTokens });
    },
  };
}

/**
 * The viewer came back from Stripe Checkout (`?checkout=ID`, `&cancelled=1` when they gave
 * up): polls the checkout until the webhook has completed it, then says so. A pass calls
 * `onGranted()`; tokens call `onTokens()`.
 */
async function followCheckout({ say, onGranted, onTokens }) {
  const url = new URL(location.href);
  const id = url.searchParams.get('checkout');
  if (!id) return;
  const cancelled = url.searchParams.get('cancelled') === '1';
  history.replaceState(null, '', returnPath());
  if (cancelled) {
    say('The payment was cancelled: nothing was charged.');
    return;
  }
  say('Confirming your payment…');
  const deadline = Date.now() + CHECKOUT_FOLLOW_MS;
  for (;;) {
    let checkout = null;
    try {
      checkout = await api('GET', `/api/v1/checkouts/${segment(id)}`);
    } catch (err) {
      if (err.status === 401 || err.status === 404) {
        say('This payment was not made with this account: sign in with the one that paid.');
        return;
      }
      // Network or server trouble: ask again.
    }
    if (checkout?.status === 'completed') {
      if (checkout.purpose === 'pass') {
        say('Payment received: your pass is active.');
        onGranted();
      } else if (checkout.purpose === 'tokens') {
        say(`Payment received: ${checkout.tokens} tokens were added to your wallet.`);
        onTokens();
      } else {
        const amount = formatMoney(checkout.amount_minor, checkout.currency);
        say(`Thank you! Your tip of ${amount} was sent.`);
      }
      return;
    }
    if (checkout?.status === 'expired') {
      say('The payment page expired before anything was paid: nothing was charged.');
      return;
    }
    if (Date.now() > deadline) {
      say('The payment is not confirmed yet. It will count as soon as it is: reload in a minute.');
      return;
    }
    await sleep(CHECKOUT_POLL_MS);
  }
}
