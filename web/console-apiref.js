/* console-apiref: Settings → API reference. Every Management API function
 * as the server describes it (/api/get-metadata, so it is never out of
 * date), each with a form to try it: its arguments as fields (text as the
 * API takes it: numbers, true/false, lists and JSON as text) or all as one
 * JSON object, a Call button, and the answer or the error as text. The
 * call goes the Console's own way (console-api.js: this session and its
 * CSRF token; long work is followed to its end); a function that may
 * change something asks first. */
import { el } from './dom.js';
import { runJob } from './console-api.js';
import { confirmAction } from './ui-dialog.js';

const SAFE = /^(Get|Ping$|Verify|Search$|Test)/;

function argField(fn, a) {
  const id = 'try-' + fn.name + '-' + a.name;
  const label = a.name + (a.required ? ' (required' : ' (') + (a.required ? ', ' : '') + a.type + ')';
  let input;
  if (a.type === 'boolean') {
    input = el('select', { id, name: a.name },
      el('option', { value: '', text: '(not given)' }), el('option', { value: 'true', text: 'true' }),
      el('option', { value: 'false', text: 'false' }));
  } else if (a.type === 'json') {
    input = el('textarea', { id, name: a.name, rows: '3', spellcheck: 'false' });
  } else {
    input = el('input', { id, name: a.name, type: 'text', autocomplete: 'off', spellcheck: 'false',
      inputmode: a.type === 'number' ? 'numeric' : null });
  }
  input.setAttribute('aria-describedby', id + '-hint');
  return el('div', { class: 'field' }, el('label', { for: id, text: label }), input,
    el('p', { class: 'hint', id: id + '-hint', text: a.description }));
}

function tryForm(fn) {
  const asJson = el('input', { type: 'checkbox', id: 'try-' + fn.name + '-asjson' });
  const fields = el('div', { class: 'try-fields' }, ...fn.args.map((a) => argField(fn, a)));
  const jsonId = 'try-' + fn.name + '-json';
  const json = el('textarea', { id: jsonId, name: 'json', rows: '4', spellcheck: 'false' });
  json.value = '{}';
  const jsonRow = el('div', { class: 'field', hidden: '' }, el('label', { for: jsonId, text: 'Arguments (a JSON object)' }), json);
  const call = el('button', { type: 'submit', class: 'primary', text: 'Call ' + fn.name });
  const error = el('p', { class: 'error try-error', role: 'alert', hidden: '' });
  const answer = el('pre', { class: 'try-answer', tabindex: '0', 'aria-label': 'Answer of ' + fn.name, hidden: '' });
  const status = el('p', { class: 'note try-status', role: 'status' });
  asJson.addEventListener('change', () => {
    if (asJson.checked) {
      const args = {};
      for (const input of fields.querySelectorAll('input, select, textarea')) {
        if (input.value !== '') args[input.name] = input.value;
      }
      json.value = JSON.stringify(args, null, 2);
    }
    fields.hidden = asJson.checked;
    jsonRow.hidden = !asJson.checked;
  });

  function args() {
    if (asJson.checked) {
      let v;
      try {
        v = JSON.parse(json.value || '{}');
      } catch (e) {
        throw new Error('The arguments are not JSON: ' + e.message);
      }
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('The arguments must be a JSON object.');
      return v;
    }
    const out = {};
    for (const input of fields.querySelectorAll('input, select, textarea')) {
      if (input.value !== '') out[input.name] = input.value;
    }
    return out;
  }

  const form = el('form', { class: 'try-form', novalidate: '', 'data-function': fn.name },
    el('h3', { text: 'Try it' }),
    fn.args.length ? el('div', { class: 'field check' }, asJson,
      el('label', { for: asJson.id, text: 'Enter the arguments as JSON' })) : null,
    fn.args.length ? fields : el('p', { class: 'note', text: 'No arguments.' }), jsonRow, call, status, error, answer);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    let a;
    try {
      a = args();
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
      return;
    }
    if (!SAFE.test(fn.name) && !await confirmAction({ title: 'Call ' + fn.name + '?',
      text: 'This call may change the system. Arguments: ' + JSON.stringify(a), confirmLabel: 'Call' })) return;
    call.disabled = true;
    answer.hidden = true;
    status.textContent = 'Calling ' + fn.name + '…';
    const started = performance.now();
    try {
      const r = await runJob(fn.name, a, (env) => {
        if (env && env.statusCode === 'running') {
          status.textContent = 'Running' + (env.percentProgress != null ? ' (' + env.percentProgress + ' %)' : '')
            + (env.statusText ? ': ' + env.statusText : '') + '…';
        }
      });
      answer.textContent = JSON.stringify(r, null, 2);
      answer.hidden = false;
      status.textContent = 'Answered in ' + Math.round(performance.now() - started) + ' ms.';
    } catch (e) {
      error.textContent = fn.name + ' failed: ' + e.message;
      error.hidden = false;
      status.textContent = '';
    } finally {
      call.disabled = false;
    }
  });
  return form;
}

function describe(f) {
  return [el('p', { text: f.description }),
    f.args.length ? el('table', { class: 'data-table' },
      el('caption', { class: 'visually-hidden', text: 'Arguments of ' + f.name }),
      el('thead', {}, el('tr', {}, ...['Argument', 'Type', 'Required', 'Meaning'].map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, ...f.args.map((a) => el('tr', {},
        el('td', {}, el('code', { text: a.name })), el('td', { text: a.type }),
        el('td', { text: a.required ? 'yes' : 'no' }), el('td', { text: a.description })))))
      : el('p', { class: 'note', text: 'No arguments.' })];
}

/* The reference: one <details> per function; its try-form is built when
 * it is first opened. */
export function apiReference(functions) {
  return el('div', { class: 'api-reference' }, ...functions.map((f) => {
    const d = el('details', { class: 'api-fn', 'data-function': f.name }, el('summary', { text: f.name }), ...describe(f));
    d.addEventListener('toggle', () => {
      if (d.open && !d.querySelector('.try-form')) d.append(tryForm(f));
    });
    return d;
  }));
}
