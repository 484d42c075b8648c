/* console-branding: Settings → Branding. The product name, the accent and
 * header colours and the logo (PNG or SVG, at most 256 KiB) for the
 * Console and Web Access (GetBranding, SetBranding), with a live preview
 * that follows the form as it is filled in, a reset to the defaults, and
 * a reload of the branding file in the config directory (ReloadBranding).
 * The server checks everything again; its refusal shows under the field
 * it names. */
import { el } from './dom.js';
import { invoke } from './console-api.js';
import { applyColors, isColor } from './branding.js';
import { brandChanged } from './console-brand.js';
import { createForm } from './ui-form.js';
import { confirmAction } from './ui-dialog.js';
import { toast } from './ui-toast.js';

const LOGO_MAX = 256 * 1024;
const LOGO_TYPES = ['image/png', 'image/svg+xml'];
const FIELDS = ['productName', 'accentColor', 'headerColor', 'logo'];

function readFile(file, how) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result);
    r.onerror = () => reject(new Error('The file cannot be read.'));
    if (how === 'url') r.readAsDataURL(file);
    else r.readAsArrayBuffer(file);
  });
}

function base64(buffer) {
  const bytes = new Uint8Array(buffer);
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function logoProblem(file) {
  if (!file) return null;
  if (!LOGO_TYPES.includes(file.type)) return 'A PNG or SVG image, please.';
  if (file.size > LOGO_MAX) return 'At most 256 KiB.';
  return null;
}

/* The server's "field: reason" as a field error. */
function fieldError(e) {
  const m = /^(\w+): /.exec(e.message || '');
  if (m && FIELDS.includes(m[1])) {
    const err = new Error(e.message);
    err.fields = { [m[1]]: e.message.slice(m[0].length) };
    return err;
  }
  return e;
}

function preview() {
  const logo = el('img', { class: 'brand-logo', alt: '', width: '24', height: '24' });
  const name = el('span', { class: 'brand-name' });
  const node = el('div', { class: 'brand-preview', id: 'brand-preview', role: 'group', 'aria-label': 'Preview' },
    el('div', { class: 'topbar' }, el('div', { class: 'brand' }, logo, name), el('span', { class: 'spacer' }),
      el('span', { class: 'who', text: 'admin' })),
    el('div', { class: 'brand-preview-body' },
      el('button', { type: 'button', class: 'primary', tabindex: '-1', text: 'Sign in' }),
      el('a', { href: '#/settings/branding', tabindex: '-1', text: 'A link' })));
  return {
    node,
    show(b) {
      name.textContent = b.productName;
      logo.setAttribute('src', b.logo);
      applyColors(b, node);
    },
  };
}

export async function brandingSettings(c) {
  const error = el('p', { class: 'error', role: 'alert', hidden: '' });
  const holder = el('div', {}, el('p', { class: 'note', text: 'Loading…' }));
  c.append(el('section', { class: 'panel', 'aria-labelledby': 'set-branding' },
    el('h2', { id: 'set-branding', text: 'Branding' }),
    el('p', { class: 'note', text: 'The product name, colours and logo of the Console and of Web Access. '
      + 'A change shows on every Client Access Server without a restart.' }),
    error, holder));
  let current;
  try {
    current = await invoke('GetBranding');
  } catch (e) {
    error.textContent = e.message;
    error.hidden = false;
    return;
  }
  const view = preview();
  let logoUrl = current.logo;

  const form = createForm({
    fields: [
      { name: 'productName', label: 'Product name', required: true, value: current.productName },
      { name: 'accentColor', label: 'Accent colour (#rrggbb; empty: the default)', value: current.accentColor || '' },
      { name: 'headerColor', label: 'Header colour (#rrggbb; empty: the default)', value: current.headerColor || '' },
      { name: 'logo', label: 'Logo (PNG or SVG, at most 256 KiB; none chosen: keep the current one)', type: 'file' },
    ],
    submitLabel: 'Save',
    validate: (v) => {
      const out = {};
      if (v.productName.trim().length > 64) out.productName = 'At most 64 characters.';
      for (const k of ['accentColor', 'headerColor']) {
        if (v[k].trim() && !isColor(v[k].trim())) out[k] = 'A colour of the form #rrggbb, e.g. #2f5fd0.';
      }
      const p = logoProblem(form.input('logo').files[0]);
      if (p) out.logo = p;
      return Object.keys(out).length ? out : null;
    },
    onSubmit: async (v) => {
      const args = { productName: v.productName.trim(), accentColor: v.accentColor.trim(),
        headerColor: v.headerColor.trim() };
      const file = form.input('logo').files[0];
      if (file) args.logo = base64(await readFile(file, 'buffer'));
      try {
        current = await invoke('SetBranding', args);
      } catch (e) {
        throw fieldError(e);
      }
      form.input('logo').value = '';
      logoUrl = current.logo;
      brandChanged(current);
      update();
      toast('Branding saved: the Console and Web Access show it now.');
    },
  });
  form.element.id = 'branding-form';
  form.input('logo').setAttribute('accept', LOGO_TYPES.join(','));

  function update() {
    const v = form.values();
    view.show({ productName: v.productName.trim() || current.productName, logo: logoUrl,
      accentColor: isColor(v.accentColor.trim()) ? v.accentColor.trim() : null,
      headerColor: isColor(v.headerColor.trim()) ? v.headerColor.trim() : null });
  }
  form.element.addEventListener('input', update);
  form.input('logo').addEventListener('change', async () => {
    const file = form.input('logo').files[0];
    form.setErrors(null, null); // a new file: the old one's refusal no longer applies
    logoUrl = file && !logoProblem(file) ? await readFile(file, 'url') : current.logo;
    update();
  });

  const reset = el('button', { type: 'button', class: 'ghost', id: 'branding-reset', text: 'Reset to the defaults',
    onclick: async () => {
      if (!await confirmAction({ title: 'Reset the branding?', text: 'The product name, colours and logo go back '
        + 'to the defaults, in the Console and in Web Access.', confirmLabel: 'Reset' })) return;
      try {
        current = await invoke('SetBranding', { reset: true });
      } catch (e) {
        toast(e.message, { kind: 'error' });
        return;
      }
      brandChanged(current);
      form.input('productName').value = current.productName;
      form.input('accentColor').value = '';
      form.input('headerColor').value = '';
      form.input('logo').value = '';
      logoUrl = current.logo;
      form.setErrors(null, null);
      update();
      toast('Branding reset to the defaults.');
    } });
  const reload = el('button', { type: 'button', class: 'ghost', id: 'branding-reload', text: 'Reload from the config directory',
    onclick: async () => {
      try {
        current = await invoke('ReloadBranding');
      } catch (e) {
        toast(e.message, { kind: 'error' });
        return;
      }
      brandChanged(current);
      toast('Branding reloaded and sent to ' + current.clientAccessServers + ' Client Access Server(s).');
    } });
  holder.replaceChildren(el('div', { class: 'branding' },
    el('div', {}, form.element, el('div', { class: 'row-actions' }, reset, reload)),
    el('div', {}, el('h3', { text: 'Preview' }), view.node)));
  update();
}
