/* branding: the installation's product name, logo and colours, as the
 * server serves them at /_branding/branding.json (the Management Server
 * for the Console, a Client Access Server for Web Access; both take it
 * from the Management API's SetBranding). Shared by the Console and Web
 * Access.
 *
 * Applied without building any HTML: every .brand-name gets the name as
 * text, every .brand-logo (and the page's icon) the logo's URL, and the
 * colours go into CSS
 * custom properties (--accent and the text on it on the document; the
 * .topbar's own --panel, --text and --muted for the header colour). The
 * text colour on a colour is black or white, whichever contrasts more. */

export const DEFAULT_BRANDING = Object.freeze({
  productName: 'Coffer', logo: '/_static/logo.svg', accentColor: null, headerColor: null, version: 0,
});

const COLOR = /^#[0-9a-fA-F]{6}$/;

export function isColor(text) {
  return COLOR.test(text);
}

function channel(v) {
  const c = v / 255;
  return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
}

function luminance(hex) {
  const n = parseInt(hex.slice(1), 16);
  return 0.2126 * channel(n >> 16) + 0.7152 * channel((n >> 8) & 255) + 0.0722 * channel(n & 255);
}

export function contrast(a, b) {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

/* The text colour that reads best on a background colour. */
export function textOn(hex) {
  return contrast(hex, '#ffffff') >= contrast(hex, '#111111') ? '#ffffff' : '#111111';
}

function setColor(style, name, value) {
  if (value) style.setProperty(name, value);
  else style.removeProperty(name);
}

/* Colours on one element's custom properties (the page, or a preview). */
export function applyColors(b, target = document.documentElement) {
  const accent = b.accentColor && isColor(b.accentColor) ? b.accentColor : null;
  setColor(target.style, '--accent', accent);
  setColor(target.style, '--accent-text', accent && textOn(accent));
  const header = b.headerColor && isColor(b.headerColor) ? b.headerColor : null;
  // the page's own bars, or a preview's (a preview keeps its own colours)
  const page = target === document.documentElement;
  const bars = [...(page ? document : target).querySelectorAll('.topbar')]
    .filter((bar) => !page || !bar.closest('.brand-preview'));
  for (const bar of bars) {
    setColor(bar.style, '--panel', header);
    setColor(bar.style, '--text', header && textOn(header));
    setColor(bar.style, '--muted', header && textOn(header));
  }
}

function own(root, selector) {
  return [...root.querySelectorAll(selector)].filter((n) => root !== document || !n.closest('.brand-preview'));
}

export function applyBranding(b, root = document) {
  for (const n of own(root, '.brand-name')) n.textContent = b.productName;
  for (const n of own(root, '.brand-logo')) {
    if (n.getAttribute('src') !== b.logo) n.setAttribute('src', b.logo);
  }
  if (root === document) {
    const icon = document.querySelector('link[rel="icon"]');
    if (icon && icon.getAttribute('href') !== b.logo) {
      icon.removeAttribute('type'); // PNG or SVG: the answer says which
      icon.setAttribute('href', b.logo);
    }
  }
  applyColors(b, root === document ? document.documentElement : root);
}

/* The branding the server serves now; the defaults if it cannot be had. */
export async function fetchBranding() {
  try {
    const r = await fetch('/_branding/branding.json', { cache: 'no-store', credentials: 'same-origin' });
    if (!r.ok) return DEFAULT_BRANDING;
    const b = await r.json();
    if (!b || typeof b.productName !== 'string' || typeof b.logo !== 'string') return DEFAULT_BRANDING;
    return b;
  } catch (e) {
    return DEFAULT_BRANDING;
  }
}

/* Keep a page's branding current: now, when the tab is shown or focused
 * again, and every intervalMs while it is shown. onChange(b) after each
 * change (e.g. to set the title). */
export function watchBranding(onChange, intervalMs = 60000) {
  let version = -1;
  let timer = null;
  async function check() {
    clearTimeout(timer);
    const b = await fetchBranding();
    if (b.version !== version || version === -1) {
      version = b.version;
      applyBranding(b);
      onChange(b);
    }
    if (!document.hidden) timer = setTimeout(check, intervalMs);
  }
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) check();
  });
  window.addEventListener('focus', check);
  return check();
}
