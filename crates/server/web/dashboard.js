// Creator dashboard (`/dashboard`): sign in or up as a creator, make the channel, connect a
// Stripe account, run the channel's streams (create, schedule, cancel, end, price) and passes
// (create, reprice, archive), and follow tips live.
//
// Everything goes through the JSON API with the page session cookie. The live tip feed is an
// `EventSource` on `/api/v1/streams/{id}/events` (the cookie authenticates it): one stream at a
// time, since a browser keeps only a few connections open per server.

import { api, currentAccount, describeError, segment } from '/static/api.js';
import { bindAccountBar, bindAccountForm } from '/static/account.js';
import { formatMoney, minorToMajorText, parseMajor } from '/static/money.js';
import { byId as $, element, notifier, showText } from '/static/ui.js';

const STREAMS_POLL_MS = 10_000;

const ui = {
  notice: $('notice'),
  signin: $('signin'),
  notCreator: $('not-creator'),
  channelSetup: $('channel-setup'),
  channelCreate: $('channel-create'),
  workspace: $('workspace'),
  channelDisplayName: $('channel-display-name'),
  channelHandle: $('channel-handle'),
  stripeForm: $('stripe-form'),
  stripeState: $('stripe-state'),
  streamNew: $('stream-new'),
  streamForm: $('stream-form'),
  streams: $('streams'),
  streamsEmpty: $('streams-empty'),
  passNew: $('pass-new'),
  passForm: $('pass-form'),
  passStreams: $('pass-streams'),
  passes: $('passes'),
  passesEmpty: $('passes-empty'),
  tipsStream: $('tips-stream'),
  tipFeedState: $('tip-feed-state'),
  tips: $('tips'),
};

const STATUS_TEXT = {
  scheduled: 'scheduled',
  idle: 'not live',
  live: 'live',
  ended: 'ended',
  cancelled: 'cancelled',
};

const PASS_KINDS = {
  free: 'Free',
  one_time: 'One-time',
  monthly: 'Monthly',
  yearly: 'Yearly',
};

const state = {
  account: null,
  channel: null, // the channel's profile, as its owner sees it
  streams: [], // newest first
  passes: [],
  tipStreamId: '',
  feed: null, // EventSource of the tip feed
  pollTimer: null,
};

const say = notifier(ui.notice);

/** `form`'s error line. */
const formError = (form, text) => showText(form.querySelector('[data-form-error]'), text);

/** Runs `action` with `form`'s submit button disabled; its failure goes on the form. */
async function submitting(form, action) {
  const submit = form.querySelector('button[type="submit"]');
  submit.disabled = true;
  formError(form, '');
  try {
    await action();
  } catch (err) {
    formError(form, describeError(err));
  } finally {
    submit.disabled = false;
  }
}

/** A button that runs `action` (disabled meanwhile); failures are told in the notice. */
function actionButton(label, name, action, { danger = false } = {}) {
  const button = element('button', {
    className: danger ? 'btn btn-small btn-danger' : 'btn btn-small btn-secondary',
    text: label,
    data: { action: name },
    attrs: { type: 'button' },
  });
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await action();
    } catch (err) {
      say(describeError(err));
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

/** A whole number from an optional input: `null` when empty. */
function optionalInteger(input, what) {
  const text = input.value.trim();
  if (!text) return null;
  if (!/^\d+$/.test(text)) throw new Error(`${what} must be a whole number.`);
  return Number(text);
}

/** `YYYY-MM-DDTHH:MM` of a `datetime-local` input, in local time, for an RFC 3339 time. */
function localInputValue(iso) {
  const date = new Date(iso);
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 16);
}

const when = (iso) => (iso ? new Date(iso).toLocaleString() : '');

/** Shows the `[data-paid-only]` / `[data-streams-only]` fields a form's choices call for. */
function syncConditionalFields(form) {
  const access = form.elements.namedItem('access');
  const kind = form.elements.namedItem('kind');
  const scope = form.elements.namedItem('scope');
  const paid = access ? access.value === 'paid' : kind ? kind.value !== 'free' : false;
  for (const el of form.querySelectorAll('[data-paid-only]')) el.hidden = !paid;
  for (const el of form.querySelectorAll('[data-streams-only]')) {
    el.hidden = !scope || scope.value !== 'streams';
  }
}

// ---- account and channel ----------------------------------------------------------------

const accountBar = bindAccountBar($('account-bar'), { onSignedOut: () => showAccount(null) });
bindAccountForm($('account-form'), { role: 'creator', mode: 'signin', onSignedIn: showAccount });

async function showAccount(account) {
  state.account = account;
  accountBar.show(account);
  ui.signin.hidden = Boolean(account);
  ui.notCreator.hidden = !account || account.role === 'creator';
  ui.channelSetup.hidden = true;
  ui.workspace.hidden = true;
  closeWorkspace();
  if (!account || account.role !== 'creator') return;
  try {
    const handle = await findChannel();
    if (state.account !== account) return;
    if (handle) await openChannel(handle);
    else ui.channelSetup.hidden = false;
  } catch (err) {
    say(describeError(err));
  }
}

/** The handle of the signed-in creator's channel, or `null` when they have none (yet). */
async function findChannel() {
  const me = await api('GET', '/api/v1/me');
  return me.channel || null;
}

async function openChannel(handle) {
  state.channel = await api('GET', `/api/v1/channels/${segment(handle)}`);
  ui.channelSetup.hidden = true;
  renderChannel();
  await Promise.all([loadStreams(), loadPasses()]);
  ui.workspace.hidden = false;
  clearInterval(state.pollTimer);
  state.pollTimer = setInterval(() => loadStreams().catch(() => {}), STREAMS_POLL_MS);
}

function closeWorkspace() {
  clearInterval(state.pollTimer);
  closeFeed();
  state.channel = null;
  state.streams = [];
  state.passes = [];
  state.tipStreamId = '';
  ui.streams.replaceChildren();
  ui.passes.replaceChildren();
}

function renderChannel() {
  const channel = state.channel;
  ui.channelDisplayName.textContent = channel.display_name;
  ui.channelHandle.textContent = `@${channel.handle}`;
  const stripe = channel.stripe_account_id || '';
  ui.stripeForm.elements.namedItem('stripe_account_id').value = stripe;
  ui.stripeState.textContent = stripe
    ? `Pass sales and tips go to ${stripe}.`
    : 'Not connected: viewers can claim free passes and enrol with tokens, but cannot buy ' +
      'passes or tip until you connect a Stripe account.';
}

ui.channelCreate.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const form = ui.channelCreate;
  submitting(form, async () => {
    const bio = form.elements.namedItem('bio').value.trim();
    try {
      const channel = await api('POST', '/api/v1/channels', {
        handle: form.elements.namedItem('handle').value.trim(),
        display_name: form.elements.namedItem('display_name').value.trim(),
        ...(bio ? { bio } : {}),
      });
      say(`Channel @${channel.handle} created.`);
      await openChannel(channel.handle);
    } catch (err) {
      // The account has a channel already (made elsewhere meanwhile): open it.
      const handle = err.code === 'channel_exists' ? await findChannel() : null;
      if (!handle) throw err;
      await openChannel(handle);
    }
  });
});

ui.stripeForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const value = ui.stripeForm.elements.namedItem('stripe_account_id').value.trim();
  submitting(ui.stripeForm, async () => {
    const channel = await api('PATCH', `/api/v1/channels/${segment(state.channel.handle)}`, {
      stripe_account_id: value || null,
    });
    state.channel = { ...state.channel, stripe_account_id: channel.stripe_account_id };
    renderChannel();
    say(value ? 'Stripe account saved.' : 'Stripe account disconnected.');
  });
});

// ---- streams ----------------------------------------------------------------------------

/**
 * Reads the streams again. Cards are made anew when the list changed (or `rebuild`);
 * otherwise only what changes by itself (status, viewers) is updated, so open forms keep what
 * is typed in them.
 */
async function loadStreams({ rebuild = false } = {}) {
  const streams = await api('GET', '/api/v1/streams');
  const sameList =
    !rebuild &&
    streams.length === ui.streams.children.length &&
    streams.every((stream, i) => ui.streams.children[i].dataset.streamId === stream.id);
  state.streams = streams;
  if (sameList) {
    streams.forEach((stream, i) => updateStreamCard(ui.streams.children[i], stream));
  } else {
    ui.streams.replaceChildren(...streams.map(streamCard));
    renderPassStreamChoices();
  }
  ui.streamsEmpty.hidden = streams.length > 0;
  renderTipStreams();
}

function streamCard(stream) {
  const status = element('span', { className: 'status', data: { field: 'status' } });
  const head = element(
    'div',
    { className: 'card-head' },
    element('strong', { className: 'card-title', text: stream.title }),
    status,
  );
  const facts = element('p', { className: 'card-facts muted', data: { field: 'facts' } });
  const links = element(
    'p',
    { className: 'card-links' },
    element('a', {
      text: 'Open the studio',
      data: { link: 'studio' },
      attrs: { href: stream.studio_url, target: '_blank', rel: 'noopener' },
    }),
    element('a', {
      text: 'Watch page',
      data: { link: 'watch' },
      attrs: { href: stream.watch_url, target: '_blank', rel: 'noopener' },
    }),
  );
  const actions = element(
    'div',
    { className: 'card-actions' },
    actionButton('Tips', 'tips', async () => {
      ui.tipsStream.value = stream.id;
      await selectTipStream(stream.id);
      ui.tipsStream.scrollIntoView({ behavior: 'smooth', block: 'center' });
    }),
    actionButton('Cancel', 'cancel', () => cancelStream(stream), { danger: true }),
    actionButton('End stream', 'end', () => endStream(stream), { danger: true }),
  );
  const card = element(
    'li',
    { className: 'card', data: { streamId: stream.id } },
    head,
    facts,
    links,
    actions,
    streamSettings(stream),
  );
  updateStreamCard(card, stream);
  return card;
}

/** The parts of a stream card that change without the creator doing anything here. */
function updateStreamCard(card, stream) {
  const status = card.querySelector('[data-field="status"]');
  status.textContent = STATUS_TEXT[stream.status] || stream.status;
  status.dataset.state = stream.status;
  const facts = [];
  if (stream.access === 'paid') {
    let access = 'Pass holders';
    if (stream.price_tokens) access += ` · or ${stream.price_tokens} tokens`;
    facts.push(access);
  } else {
    facts.push('Free');
  }
  if (stream.status === 'scheduled') facts.push(`starts ${when(stream.scheduled_at)}`);
  if (stream.status === 'live') facts.push(`${stream.viewers} watching`);
  if (stream.cancelled_at) facts.push(`cancelled ${when(stream.cancelled_at)}`);
  else if (stream.ended_at) facts.push(`ended ${when(stream.ended_at)}`);
  card.querySelector('[data-field="facts"]').textContent = facts.join(' · ');
  const over = stream.status === 'ended' || stream.status === 'cancelled';
  card.dataset.status = stream.status;
  card.querySelector('[data-action="cancel"]').hidden = stream.status !== 'scheduled';
  card.querySelector('[data-action="end"]').hidden = !['idle', 'live'].includes(stream.status);
  card.querySelector('[data-link="studio"]').hidden = over;
  card.querySelector('details.settings').hidden = over;
  const schedule = card.querySelector('[data-form="schedule"]');
  schedule.hidden = Boolean(stream.started_at) || over;
}

/** "Settings" of a stream card: its access and token price, and its start time. */
function streamSettings(stream) {
  const accessForm = element('form', { className: 'inline-form', data: { form: 'access' } });
  accessForm.innerHTML = `
    <label class="field"><span class="label">Access</span>
      <select name="access">
        <option value="free">Free</option><option value="paid">Pass holders</option>
      </select></label>
    <label class="field" data-paid-only><span class="label">Price in tokens</span>
      <input name="price_tokens" type="number" min="1" step="1" placeholder="none"></label>
    <button class="btn btn-small btn-secondary" type="submit">Save</button>
    <p class="form-error" data-form-error role="alert" hidden></p>`;
  accessForm.elements.namedItem('access').value = stream.access;
  accessForm.elements.namedItem('price_tokens').value = stream.price_tokens ?? '';
  accessForm.addEventListener('change', () => syncConditionalFields(accessForm));
  syncConditionalFields(accessForm);
  accessForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submitting(accessForm, async () => {
      const access = accessForm.elements.namedItem('access').value;
      const price = optionalInteger(accessForm.elements.namedItem('price_tokens'), 'The price');
      await api('PATCH', `/api/v1/streams/${segment(stream.id)}`, {
        access,
        price_tokens: access === 'paid' ? price : null,
      });
      say(`“${stream.title}” is now ${access === 'paid' ? 'for pass holders' : 'free'}.`);
      await reloadStreams();
    });
  });

  const scheduleForm = element('form', { className: 'inline-form', data: { form: 'schedule' } });
  scheduleForm.innerHTML = `
    <label class="field"><span class="label">Starts at</span>
      <input name="scheduled_at" type="datetime-local" required></label>
    <button class="btn btn-small btn-secondary" type="submit">Schedule</button>
    <p class="form-error" data-form-error role="alert" hidden></p>`;
  if (stream.scheduled_at) {
    scheduleForm.elements.namedItem('scheduled_at').value = localInputValue(stream.scheduled_at);
  }
  scheduleForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submitting(scheduleForm, async () => {
      const local = scheduleForm.elements.namedItem('scheduled_at').value;
      const updated = await api('POST', `/api/v1/streams/${segment(stream.id)}/schedule`, {
        scheduled_at: new Date(local).toISOString(),
      });
      say(`“${stream.title}” starts ${when(updated.scheduled_at)}.`);
      await reloadStreams();
    });
  });

  return element(
    'details',
    { className: 'settings' },
    element('summary', { text: 'Settings' }),
    accessForm,
    scheduleForm,
  );
}

/** Renders every stream card anew (after a change made here). */
const reloadStreams = () => loadStreams({ rebuild: true });

async function cancelStream(stream) {
  if (!confirm(`Cancel “${stream.title}”? It will not take place.`)) return;
  await api('POST', `/api/v1/streams/${segment(stream.id)}/cancel`);
  say(`“${stream.title}” is cancelled.`);
  await reloadStreams();
}

async function endStream(stream) {
  if (!confirm(`End “${stream.title}”? The publisher and every viewer are disconnected.`)) return;
  await api('DELETE', `/api/v1/streams/${segment(stream.id)}`);
  say(`“${stream.title}” has ended.`);
  await reloadStreams();
}

ui.streamForm.addEventListener('change', () => syncConditionalFields(ui.streamForm));
ui.streamForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const form = ui.streamForm;
  const field = (name) => form.elements.namedItem(name);
  submitting(form, async () => {
    const body = { title: field('title').value.trim(), access: field('access').value };
    const description = field('description').value.trim();
    if (description) body.description = description;
    if (field('scheduled_at').value) {
      body.scheduled_at = new Date(field('scheduled_at').value).toISOString();
    }
    if (body.access === 'paid') {
      const price = optionalInteger(field('price_tokens'), 'The price');
      const days = optionalInteger(field('replay_access_days'), 'Replay days');
      if (price !== null) body.price_tokens = price;
      if (days !== null) body.replay_access_days = days;
    }
    const stream = await api('POST', '/api/v1/streams', body);
    form.reset();
    syncConditionalFields(form);
    ui.streamNew.open = false;
    say(`Stream “${stream.title}” created.`);
    await reloadStreams();
  });
});

// ---- passes -----------------------------------------------------------------------------

async function loadPasses() {
  const handle = segment(state.channel.handle);
  const body = await api('GET', `/api/v1/channels/${handle}/passes?include_archived=true`);
  state.passes = body.passes || [];
  // Active first, then newest first.
  state.passes.sort(
    (a, b) => Number(b.active) - Number(a.active) || b.created_at.localeCompare(a.created_at),
  );
  ui.passes.replaceChildren(...state.passes.map(passCard));
  ui.passesEmpty.hidden = state.passes.length > 0;
  const paid = state.passes.find((pass) => pass.kind !== 'free');
  if (paid) ui.passForm.elements.namedItem('currency').value = paid.currency;
}

function passCard(pass) {
  const price = pass.kind === 'free' ? 'free' : formatMoney(pass.amount_minor, pass.currency);
  const head = element(
    'div',
    { className: 'card-head' },
    element('strong', { className: 'card-title', text: pass.name }),
    element('span', { className: 'tag', text: PASS_KINDS[pass.kind] || pass.kind }),
    element('span', { className: 'card-price', text: price }),
  );
  if (!pass.active) head.append(element('span', { className: 'tag muted', text: 'archived' }));
  const titles = pass.stream_ids.map(
    (id) => state.streams.find((stream) => stream.id === id)?.title || id,
  );
  const covers = pass.scope === 'channel' ? 'Every stream of the channel' : titles.join(', ');
  const card = element(
    'li',
    { className: pass.active ? 'card' : 'card archived', data: { passId: pass.id } },
    head,
    element('p', { className: 'card-facts muted', text: covers }),
  );
  if (!pass.active) return card;
  const actions = element('div', { className: 'card-actions' });
  if (pass.kind !== 'free') actions.append(repriceForm(pass));
  actions.append(actionButton('Archive', 'archive', () => archivePass(pass), { danger: true }));
  card.append(actions);
  return card;
}

function repriceForm(pass) {
  const form = element('form', { className: 'inline-form', data: { form: 'reprice' } });
  form.innerHTML = `
    <label class="field"><span class="label">New price (${pass.currency.toUpperCase()})</span>
      <input name="amount" type="text" inputmode="decimal" autocomplete="off" required></label>
    <button class="btn btn-small btn-secondary" type="submit">Reprice</button>
    <p class="form-error" data-form-error role="alert" hidden></p>`;
  form.elements.namedItem('amount').value = minorToMajorText(pass.amount_minor, pass.currency);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submitting(form, async () => {
      const amount = parseMajor(form.elements.namedItem('amount').value, pass.currency);
      const updated = await api('PATCH', `/api/v1/passes/${segment(pass.id)}`, {
        amount_minor: amount,
      });
      const price = formatMoney(updated.amount_minor, updated.currency);
      say(`“${pass.name}” now costs ${price} for new buyers.`);
      await loadPasses();
    });
  });
  return form;
}

async function archivePass(pass) {
  if (!confirm(`Archive “${pass.name}”? Nobody can get it any more; holders keep access.`)) return;
  await api('DELETE', `/api/v1/passes/${segment(pass.id)}`);
  say(`“${pass.name}” is archived.`);
  await loadPasses();
}

/** The streams a new "chosen streams" pass can cover: those not over yet. */
function renderPassStreamChoices() {
  const open = state.streams.filter((s) => s.status !== 'ended' && s.status !== 'cancelled');
  if (!open.length) {
    ui.passStreams.replaceChildren(element('p', { className: 'muted', text: 'No open stream.' }));
    return;
  }
  ui.passStreams.replaceChildren(
    ...open.map((stream) =>
      element(
        'label',
        { className: 'check' },
        element('input', { attrs: { type: 'checkbox', name: 'stream_ids', value: stream.id } }),
        element('span', { text: stream.title }),
      ),
    ),
  );
}

ui.passForm.addEventListener('change', () => syncConditionalFields(ui.passForm));
ui.passForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const form = ui.passForm;
  const field = (name) => form.elements.namedItem(name);
  submitting(form, async () => {
    const kind = field('kind').value;
    const body = { name: field('name').value.trim(), kind, scope: field('scope').value };
    if (kind !== 'free') {
      body.currency = field('currency').value.trim().toLowerCase();
      body.amount_minor = parseMajor(field('amount').value, body.currency);
    }
    if (body.scope === 'streams') {
      body.stream_ids = [...form.querySelectorAll('input[name="stream_ids"]:checked')].map(
        (input) => input.value,
      );
      if (!body.stream_ids.length) throw new Error('Choose the streams the pass covers.');
    }
    const handle = segment(state.channel.handle);
    const pass = await api('POST', `/api/v1/channels/${handle}/passes`, body);
    const currency = field('currency').value;
    form.reset();
    field('currency').value = currency;
    syncConditionalFields(form);
    ui.passNew.open = false;
    say(`Pass “${pass.name}” created.`);
    await loadPasses();
  });
});

// ---- tips -------------------------------------------------------------------------------

/** The stream picker of the tips panel; with none chosen, it follows the live stream. */
function renderTipStreams() {
  const options = state.streams.map((stream) =>
    element('option', {
      text: `${stream.title} (${STATUS_TEXT[stream.status] || stream.status})`,
      attrs: { value: stream.id },
    }),
  );
  const none = element('option', { text: 'Choose a stream', attrs: { value: '' } });
  ui.tipsStream.replaceChildren(none, ...options);
  const chosen = state.streams.some((s) => s.id === state.tipStreamId) ? state.tipStreamId : '';
  const live = state.streams.find((stream) => stream.status === 'live');
  const next = chosen || (live ? live.id : '');
  ui.tipsStream.value = next;
  if (next !== state.tipStreamId) selectTipStream(next);
}

function setFeedState(text, look) {
  ui.tipFeedState.textContent = text;
  ui.tipFeedState.dataset.state = look;
}

function closeFeed() {
  if (state.feed) state.feed.close();
  state.feed = null;
  setFeedState('idle', 'idle');
}

/** Shows `streamId`'s tips and listens for new ones. */
async function selectTipStream(streamId) {
  if (streamId === state.tipStreamId && state.feed) return;
  closeFeed();
  state.tipStreamId = streamId;
  renderTips([]);
  if (!streamId) return;
  const feed = new EventSource(`/api/v1/streams/${segment(streamId)}/events`);
  state.feed = feed;
  setFeedState('connecting', 'connecting');
  feed.addEventListener('open', () => setFeedState('listening', 'live'));
  feed.addEventListener('error', () => {
    // The browser reconnects by itself unless the server refused the feed.
    if (feed.readyState === EventSource.CLOSED) setFeedState('disconnected', 'error');
    else setFeedState('reconnecting', 'connecting');
  });
  feed.addEventListener('tip', (ev) => {
    let tip;
    try {
      tip = JSON.parse(ev.data);
    } catch {
      return;
    }
    addTipRow(tip, true);
    say(`New tip from ${tip.from}: ${formatMoney(tip.amount_minor, tip.currency)}.`);
  });
  try {
    const body = await api('GET', `/api/v1/streams/${segment(streamId)}/tips?limit=50`);
    if (state.tipStreamId === streamId) renderTips(body.tips || []);
  } catch (err) {
    say(describeError(err));
  }
}

function renderTips(tips) {
  const body = ui.tips.tBodies[0];
  body.replaceChildren();
  for (const tip of tips) addTipRow(tip, false, 'end');
  if (!tips.length) {
    const row = body.insertRow();
    row.className = 'empty';
    const cell = row.insertCell();
    cell.colSpan = 5;
    cell.textContent = 'No tips yet.';
  }
}

/** One tip in the table: new ones (from the feed) at the top, highlighted. */
function addTipRow(tip, fresh, where = 'start') {
  const body = ui.tips.tBodies[0];
  body.querySelector('tr.empty')?.remove();
  const row = element('tr', { className: fresh ? 'fresh' : '' });
  for (const text of [
    when(tip.paid_at),
    tip.from,
    formatMoney(tip.amount_minor, tip.currency),
    formatMoney(tip.creator_minor, tip.currency),
    tip.message || '–',
  ]) {
    row.append(element('td', { text }));
  }
  if (where === 'start') body.prepend(row);
  else body.append(row);
}

ui.tipsStream.addEventListener('change', () => selectTipStream(ui.tipsStream.value));

// ---- start ------------------------------------------------------------------------------

syncConditionalFields(ui.streamForm);
syncConditionalFields(ui.passForm);
currentAccount()
  .then(showAccount)
  .catch((err) => {
    say(describeError(err));
    showAccount(null);
  });
