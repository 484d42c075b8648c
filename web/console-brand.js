/* console-brand: the Console's branding (branding.js): the name, logo and
 * colours the Management Server serves, kept current while the Console is
 * open; the document title ends with the name. */
import { DEFAULT_BRANDING, applyBranding, watchBranding } from './branding.js';

export const BRAND = { name: DEFAULT_BRANDING.productName, logo: DEFAULT_BRANDING.logo };
let page = '';

function title() {
  document.title = (page ? page + ' – ' : '') + BRAND.name + ' Management Console';
}

function adopt(b) {
  BRAND.name = b.productName;
  BRAND.logo = b.logo;
  title();
}

/* Applies the defaults at once, then what the server says. */
export function applyBrand(root = document) {
  applyBranding(DEFAULT_BRANDING, root);
  return watchBranding(adopt);
}

/* After a change made here: shown at once, not at the next check. */
export function brandChanged(b) {
  applyBranding(b);
  adopt(b);
}

export function setTitle(p) {
  page = p;
  title();
}
