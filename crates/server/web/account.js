// Accounts on the pages: the sign-in / sign-up form and the "signed in as" bar.
//
// The form's markup lives in the page: a <form> with inputs named `email`, `password` and
// `display_name` (inside an element marked `data-signup-only`), buttons marked
// `data-mode="signup"` and `data-mode="signin"` to switch between the two, one submit button
// and an element marked `data-form-error`. Signing in or up sets the session cookie; the
// page learns of it through `onSignedIn(account)`.

import { api, describeError, signOut } from '/static/api.js';
import { showText } from '/static/ui.js';

/**
 * Wires a sign-in / sign-up form. `role` is the role of accounts made here (`viewer` or
 * `creator`). Returns `{ setMode, showError }`.
 */
export function bindAccountForm(form, { role, mode: initialMode = 'signup', onSignedIn }) {
  const submit = form.querySelector('button[type="submit"]');
  const error = form.querySelector('[data-form-error]');
  const field = (name) => form.elements.namedItem(name);
  let mode = initialMode;

  const showError = (text) => showText(error, text);

  function setMode(next) {
    mode = next;
    form.dataset.mode = next;
    const signup = next === 'signup';
    for (const el of form.querySelectorAll('[data-signup-only]')) el.hidden = !signup;
    for (const button of form.querySelectorAll('button[data-mode]')) {
      button.setAttribute('aria-pressed', String(button.dataset.mode === next));
    }
    field('display_name').required = signup;
    field('password').autocomplete = signup ? 'new-password' : 'current-password';
    submit.textContent = signup ? 'Create account' : 'Sign in';
    showError('');
  }

  for (const button of form.querySelectorAll('button[data-mode]')) {
    button.addEventListener('click', () => setMode(button.dataset.mode));
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const credentials = { email: field('email').value.trim(), password: field('password').value };
    submit.disabled = true;
    showError('');
    try {
      const session =
        mode === 'signup'
          ? await api('POST', '/api/v1/accounts', {
              ...credentials,
              display_name: field('display_name').value.trim(),
              role,
            })
          : await api('POST', '/api/v1/sessions', credentials);
      form.reset();
      onSignedIn(session.account);
    } catch (err) {
      showError(describeError(err));
    } finally {
      submit.disabled = false;
    }
  });

  setMode(initialMode);
  return { setMode, showError };
}

/**
 * Shows who is signed in in `bar` (an element holding a `[data-account-name]` and a
 * `[data-sign-out]` button), or hides it for nobody. The button signs out and calls
 * `onSignedOut()`.
 */
export function bindAccountBar(bar, { onSignedOut }) {
  const name = bar.querySelector('[data-account-name]');
  const button = bar.querySelector('[data-sign-out]');
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await signOut();
      onSignedOut();
    } catch (err) {
      name.textContent = describeError(err);
    } finally {
      button.disabled = false;
    }
  });
  return {
    show(account) {
      bar.hidden = !account;
      name.textContent = account ? account.display_name : '';
      name.title = account ? account.email : '';
    },
  };
}
