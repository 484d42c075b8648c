/* ui-toast: short notices in a corner ("Instance acme started."), read
 * out by screen readers; errors stay until dismissed, the rest go after
 * timeoutMs. */
import { el } from './dom.js';

let region = null;

function toastRegion() {
  if (!region || !region.isConnected) {
    region = el('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(region);
  }
  return region;
}

export function toast(text, { kind = 'info', timeoutMs = 5000 } = {}) {
  const item = el('div', { class: 'toast ' + kind },
    el('span', { class: 'toast-text', text }));
  const close = () => item.remove();
  item.append(el('button', { type: 'button', class: 'icon-button', 'aria-label': 'Dismiss', text: '×', onclick: close }));
  toastRegion().append(item);
  if (kind !== 'error') setTimeout(close, timeoutMs);
  return close;
}

/* A row's action button ("Delete alice"): runs fn, shows its failure as an
 * error toast, then after() (a reload of the rows) either way. */
export function actionButton(label, name, fn, { danger = false, after = null } = {}) {
  return el('button', { type: 'button', class: 'ghost small' + (danger ? ' danger-text' : ''),
    text: label, 'aria-label': label + ' ' + name,
    onclick: async () => {
      try {
        await fn();
      } catch (e) {
        toast(e.message, { kind: 'error' });
      }
      if (after) after();
    } });
}
