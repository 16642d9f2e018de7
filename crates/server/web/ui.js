// Small DOM helpers shared by the pages.

/** How long a notice stays up. */
const NOTICE_MS = 15_000;

export const byId = (id) => document.getElementById(id);

/**
 * A new element: `className`, `text` (textContent), `data` (dataset entries) and `attrs`
 * (attributes) are optional; `children` are appended.
 */
export function element(tag, { className, text, data, attrs } = {}, ...children) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined && text !== null) el.textContent = String(text);
  for (const [key, value] of Object.entries(data || {})) el.dataset[key] = value;
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, value);
  el.append(...children);
  return el;
}

/** Shows `text` in `el`, or hides `el` when `text` is empty. */
export function showText(el, text) {
  el.textContent = text || '';
  el.hidden = !text;
}

/** A function that shows a passing message in `el` (`say('')` hides it). */
export function notifier(el) {
  let timer = null;
  return (text) => {
    clearTimeout(timer);
    showText(el, text);
    if (text) timer = setTimeout(() => showText(el, ''), NOTICE_MS);
  };
}
