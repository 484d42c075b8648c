/* console-brand: the product's name and logo, in one place. Every element
 * with class brand-name shows the name, every brand-logo the logo, and the
 * document title ends with the name; a branding change is a change here
 * (and in logo.svg). */
export const BRAND = {
  name: 'Coffer',
  logo: '/_static/logo.svg',
};

export function applyBrand(root = document) {
  for (const n of root.querySelectorAll('.brand-name')) n.textContent = BRAND.name;
  for (const n of root.querySelectorAll('.brand-logo')) n.setAttribute('src', BRAND.logo);
}

export function setTitle(page) {
  document.title = (page ? page + ' – ' : '') + BRAND.name + ' Management Console';
}
