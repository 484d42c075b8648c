/* dom: building the page. Text always goes in as text (textContent, or an
 * attribute value); nothing here parses a string as HTML. */

export const byId = (id) => document.getElementById(id);

/* el('button', {class: 'x', text: 'Go', onclick: f}, child, ...) */
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c !== null && c !== undefined && c !== false) e.append(c);
  }
  return e;
}

export function show(node, on) {
  node.hidden = !on;
}

/* A status line: shown with text, hidden without; red when an error. */
export function message(node, text, isError) {
  node.textContent = text || '';
  node.classList.toggle('error', !!isError);
  show(node, !!text);
}

/* Starts a download of url the way a link with "download" would. */
export function download(url) {
  const a = el('a', { href: url, download: '' });
  document.body.append(a);
  a.click();
  a.remove();
}
