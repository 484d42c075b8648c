/* format: dates, sizes and mail addresses as the user reads them. */

export function formatDate(seconds, long) {
  if (!seconds) return '';
  const d = new Date(seconds * 1000);
  const now = new Date();
  if (long) return d.toLocaleString();
  if (d.toDateString() === now.toDateString())
    return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (d.getFullYear() === now.getFullYear())
    return d.toLocaleDateString([], { day: 'numeric', month: 'short' });
  return d.toLocaleDateString();
}

export function formatSize(n) {
  if (n < 1024) return n + ' B';
  if (n < 1024 * 1024) return Math.round(n / 1024) + ' KB';
  return (n / 1024 / 1024).toFixed(1) + ' MB';
}

/* "Name <address>" (as the server gives a sender) into its display name
 * and address; anything else (several addresses, a group, a bare address)
 * is shown whole. Only ever used as text, never parsed as HTML. */
export function parseSender(text) {
  const t = (text || '').trim();
  const m = /^(?:"((?:[^"\\]|\\.)*)"|([^"<>,]*?))\s*<([^<>\s]+)>$/.exec(t);
  if (!m) return { name: t, address: t };
  const name = (m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]).trim();
  return { name: name || m[3], address: m[3] };
}
