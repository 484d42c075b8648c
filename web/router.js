/* router: which page shows, from the URL's hash ("#/settings",
 * "#/instances/acme"). Hash based, so the server serves one document for
 * every page and a reload or a bookmark comes back to the same page.
 *
 *   const r = createRouter({ '': mail, 'settings': settings, 'instances/:id': inst },
 *                          { guard: (route) => route or another route name });
 *   r.start(); r.go('settings');
 *
 * A page is { enter(params), leave() } (both optional). */

function compile(pattern) {
  const parts = pattern.split('/').filter(Boolean);
  return (path) => {
    const got = path.split('/').filter(Boolean);
    if (got.length !== parts.length) return null;
    const params = {};
    for (let i = 0; i < parts.length; i++) {
      if (parts[i].startsWith(':')) params[parts[i].slice(1)] = decodeURIComponent(got[i]);
      else if (parts[i] !== got[i]) return null;
    }
    return params;
  };
}

export function createRouter(routes, { fallback = '', guard = null } = {}) {
  const table = Object.entries(routes).map(([pattern, page]) => ({ pattern, page, match: compile(pattern) }));
  let current = null;

  const current_path = () => location.hash.replace(/^#\/?/, '');

  function resolve(path) {
    for (const r of table) {
      const params = r.match(path);
      if (params) return { pattern: r.pattern, page: r.page, params, path };
    }
    return null;
  }

  async function render() {
    let route = resolve(current_path()) || resolve(fallback);
    if (guard) {
      const other = guard(route);
      if (other !== route.pattern && other !== undefined) route = resolve(other);
    }
    if (current && current.page !== route.page && current.page.leave) current.page.leave();
    const same = current && current.page === route.page && current.path === route.path;
    current = route;
    if (!same && route.page.enter) await route.page.enter(route.params);
  }

  return {
    start() {
      window.addEventListener('hashchange', render);
      return render();
    },
    /* Shows a page; the browser's history gets an entry. */
    go(path) {
      const hash = '#/' + path;
      if (location.hash === hash || (path === '' && location.hash === '')) return render();
      location.hash = hash;
      return undefined;
    },
    /* Shows the page again from its start (after signing in, say). */
    refresh() {
      current = null;
      return render();
    },
    get current() {
      return current ? current.pattern : null;
    },
  };
}
