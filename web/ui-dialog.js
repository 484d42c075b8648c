/* ui-dialog: modal dialogs on <dialog> (focus stays inside, Escape
 * cancels), and a confirmation for what cannot be undone.
 *
 *   const value = await openDialog({ title, body: node, actions: [
 *     { label: 'Cancel', value: null }, { label: 'Delete', value: 'yes', class: 'danger' }] });
 *   if (await confirmAction({ title: 'Delete instance?', text: 'acme and its mail', confirmLabel: 'Delete' })) ...
 *   if (await openFormDialog('Create user', (done) => createForm({ ..., onSubmit: async (v) => { ...; done(); } }))) ...
 *
 * Escape or the close button give null. The dialog is removed afterwards. */
import { el } from './dom.js';

let nextId = 0;

export function openDialog({ title, body = null, actions = [{ label: 'Close', value: null }], className = '' }) {
  const titleId = 'dlg' + ++nextId + '-title';
  const dialog = el('dialog', { class: 'dialog ' + className, 'aria-labelledby': titleId });
  const head = el('div', { class: 'dialog-head' }, el('h2', { id: titleId, text: title }),
    el('button', { type: 'button', class: 'icon-button', 'aria-label': 'Close', text: '×',
      onclick: () => dialog.close('') }));
  const buttons = actions.map((a, i) => el('button', {
    type: 'button', class: a.class || 'ghost', text: a.label, 'data-action': String(i),
    onclick: () => dialog.close(String(i)),
  }));
  dialog.append(head, el('div', { class: 'dialog-body' }, body), el('div', { class: 'dialog-actions' }, ...buttons));
  document.body.append(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      const i = dialog.returnValue === '' ? -1 : Number(dialog.returnValue);
      dialog.remove();
      resolve(i >= 0 && i < actions.length ? actions[i].value : null);
    }, { once: true });
    dialog.showModal();
    /* the safe choice has the focus, so Enter never confirms by accident */
    (buttons[0] || head.lastChild).focus();
  });
}

export async function confirmAction({ title, text, confirmLabel = 'OK', danger = true }) {
  const v = await openDialog({
    title,
    body: el('p', { class: 'confirm-text', text }),
    actions: [{ label: 'Cancel', value: false }, { label: confirmLabel, value: true, class: danger ? 'danger' : 'primary' }],
    className: 'confirm',
  });
  return v === true;
}

/* A form in a dialog: makeForm(done) builds it (a ui-form), and its work
 * calls done() (or done(value)) when finished. Resolves to that value (true
 * by default), or false when the dialog is cancelled. */
export function openFormDialog(title, makeForm, { className = '' } = {}) {
  let finish = null;
  const form = makeForm((v = true) => finish(v));
  const shown = openDialog({ title, body: form.element, actions: [{ label: 'Cancel', value: null }], className });
  const dialog = form.element.closest('dialog');
  const result = new Promise((resolve) => {
    finish = (v) => {
      resolve(v);
      dialog.close('');
    };
    shown.then(() => resolve(false));
  });
  form.element.querySelector('input')?.focus();
  return result;
}
