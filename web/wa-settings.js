/* wa-settings: the settings page of Web Access (#/settings), a dialog over
 * the mail: change password, two-factor authentication (enrolment with the
 * QR code, turning it off) and app passwords. */
import { byId as $, el, show, message } from './dom.js';
import { formatDate } from './format.js';
import { session } from './wa-session.js';

const api = () => session.api;

function renderMfa() {
  const on = !!(session.user && session.user.mfaEnabled);
  $('mfa-state').textContent = on ? 'Two-factor authentication is on.' :
    'Two-factor authentication is off. Turn it on to require a code from an app on your phone at every sign-in.';
  show($('mfa-begin-form'), !on);
  show($('mfa-activate-form'), false);
  show($('mfa-disable-form'), on);
}

async function loadAppPasswords() {
  const ul = $('app-password-list');
  ul.textContent = '';
  let list = [];
  try {
    list = await api().call('GET', 'app-passwords');
  } catch (e) {
    message($('ap-message'), e.message, true);
    return;
  }
  for (const p of list) {
    ul.append(el('li', {},
      el('span', { text: p.name + ' (created ' + formatDate(p.created, true) + ')' }),
      el('button', {
        type: 'button',
        class: 'ghost',
        text: 'Delete',
        onclick: async () => {
          try {
            await api().call('DELETE', 'app-passwords/' + encodeURIComponent(p.name));
            loadAppPasswords();
          } catch (e) {
            message($('ap-message'), e.message, true);
          }
        },
      })));
  }
  if (!list.length) ul.append(el('li', { class: 'hint', text: 'None yet.' }));
}

/* A settings form: submit runs action(); its error shows in the
 * section's message line. */
function onSubmit(formId, messageId, action) {
  $(formId).addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await action();
    } catch (e) {
      message($(messageId), e.message, true);
    }
  });
}

async function changePassword() {
  const msg = $('pw-message');
  if ($('pw-new').value !== $('pw-new2').value) {
    message(msg, 'The new passwords differ.', true);
    return;
  }
  await api().call('POST', 'password', { oldPassword: $('pw-old').value, newPassword: $('pw-new').value });
  $('password-form').reset();
  message(msg, 'Your password was changed. Other sessions were signed out.', false);
}

async function mfaBegin() {
  const r = await api().call('POST', 'mfa/begin', { password: $('mfa-begin-password').value });
  $('mfa-begin-form').reset();
  $('mfa-qr').src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(r.qrCodeSvg);
  $('mfa-secret').textContent = r.secret;
  show($('mfa-begin-form'), false);
  show($('mfa-activate-form'), true);
  message($('mfa-message'), '');
  $('mfa-code').focus();
}

async function mfaActivate() {
  await api().call('POST', 'mfa/activate', { code: $('mfa-code').value.replace(/\s+/g, '') });
  $('mfa-activate-form').reset();
  session.user.mfaEnabled = true;
  renderMfa();
  message($('mfa-message'), 'Two-factor authentication is now on.', false);
}

async function mfaDisable() {
  await api().call('POST', 'mfa/disable', {
    password: $('mfa-disable-password').value,
    code: $('mfa-disable-code').value.replace(/\s+/g, ''),
  });
  $('mfa-disable-form').reset();
  session.user.mfaEnabled = false;
  renderMfa();
  message($('mfa-message'), 'Two-factor authentication is now off.', false);
}

async function createAppPassword() {
  const r = await api().call('POST', 'app-passwords', { name: $('ap-name').value, password: $('ap-password').value });
  $('app-password-form').reset();
  message($('ap-message'), 'App password "' + r.name + '": ' + r.password + ' (shown only now)', false);
  loadAppPasswords();
}

/* background: the page the dialog opens over (the mail). */
export function createSettingsPage(background) {
  return {
    async enter() {
      await background.enter();
      for (const id of ['pw-message', 'mfa-message', 'ap-message']) message($(id), '');
      renderMfa();
      loadAppPasswords();
      if (!$('settings').open) $('settings').showModal();
    },
    leave() {
      if ($('settings').open) $('settings').close();
    },
  };
}

/* closed: called when the user closes the dialog (Escape, the × button). */
export function initSettings(closed) {
  $('settings').addEventListener('close', closed);
  onSubmit('password-form', 'pw-message', changePassword);
  onSubmit('mfa-begin-form', 'mfa-message', mfaBegin);
  onSubmit('mfa-activate-form', 'mfa-message', mfaActivate);
  onSubmit('mfa-disable-form', 'mfa-message', mfaDisable);
  onSubmit('app-password-form', 'ap-message', createAppPassword);
}
