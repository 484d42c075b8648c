/* ui-form: a form built from a list of fields, with an error under each
 * field and one for the whole form.
 *
 *   const f = createForm({
 *     fields: [{ name: 'name', label: 'Name', required: true },
 *              { name: 'port', label: 'Port', type: 'number' }],
 *     submitLabel: 'Create',
 *     validate: (v) => (v.port > 65535 ? { port: 'At most 65535.' } : null),
 *     onSubmit: async (values) => { ... } });
 *
 * onSubmit may throw an error with .fields ({name: text}) to mark fields,
 * or any error whose message then shows for the whole form. While it runs
 * the submit button is disabled (no double submission). */
import { el, show } from './dom.js';

let nextId = 0;

export function createForm({ fields, submitLabel = 'Save', validate = null, onSubmit, submitClass = 'primary' }) {
  const inputs = new Map();
  const errors = new Map();
  const form = el('form', { class: 'form-view', novalidate: '' });
  for (const f of fields) {
    const id = 'f' + ++nextId + '-' + f.name;
    const attrs = { id, name: f.name, type: f.type || 'text', autocomplete: f.autocomplete || 'off' };
    const input = f.type === 'select' ? el('select', { id, name: f.name }) : el('input', attrs);
    if (f.type === 'select') {
      for (const o of f.options || []) input.append(el('option', { value: o.value, text: o.label }));
    }
    if (f.value !== undefined) {
      if (f.type === 'checkbox') input.checked = !!f.value;
      else input.value = f.value;
    }
    const error = el('p', { class: 'field-error', id: id + '-error', role: 'alert' });
    show(error, false);
    input.setAttribute('aria-describedby', error.id);
    inputs.set(f.name, input);
    errors.set(f.name, error);
    form.append(el('div', { class: 'field' + (f.type === 'checkbox' ? ' check' : '') },
      el('label', { for: id, text: f.label }), input, error));
  }
  const formError = el('p', { class: 'error form-error', role: 'alert' });
  show(formError, false);
  const submit = el('button', { type: 'submit', class: submitClass, text: submitLabel });
  form.append(formError, submit);

  function values() {
    const v = {};
    for (const f of fields) {
      const input = inputs.get(f.name);
      v[f.name] = f.type === 'checkbox' ? input.checked :
        f.type === 'number' ? (input.value === '' ? null : Number(input.value)) : input.value;
    }
    return v;
  }

  function setErrors(fieldErrors, whole) {
    for (const [name, node] of errors) {
      const text = fieldErrors && fieldErrors[name];
      node.textContent = text || '';
      show(node, !!text);
      inputs.get(name).setAttribute('aria-invalid', text ? 'true' : 'false');
    }
    formError.textContent = whole || '';
    show(formError, !!whole);
  }

  function required(v) {
    const out = {};
    for (const f of fields) {
      if (f.required && (v[f.name] === '' || v[f.name] === null)) out[f.name] = f.label + ' is required.';
    }
    return out;
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const v = values();
    const problems = { ...required(v), ...((validate && validate(v)) || {}) };
    if (Object.keys(problems).length) {
      setErrors(problems, null);
      inputs.get(Object.keys(problems)[0]).focus();
      return;
    }
    setErrors(null, null);
    submit.disabled = true;
    try {
      await onSubmit(v);
    } catch (e) {
      setErrors(e.fields || null, e.fields ? null : e.message);
    } finally {
      submit.disabled = false;
    }
  });

  return { element: form, values, setErrors, input: (name) => inputs.get(name), reset: () => form.reset() };
}
