// Small helpers for building the pages: elements, times, statuses and refusals.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

export function when(iso) {
  if (!iso) return h("span", {}, "—");
  const date = new Date(iso);
  return h("time", { datetime: iso, title: iso }, date.toLocaleString());
}

export function badge(status) {
  return h("span", { class: `badge ${status}` }, status);
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function bar(value, max, label) {
  const percent = max > 0 ? Math.min(100, Math.round((100 * value) / max)) : 0;
  const fill = h("span");
  fill.style.width = `${percent}%`; // through CSSOM: the page's CSP refuses style attributes
  return h("div", {
    class: "bar", role: "progressbar", "aria-label": label,
    "aria-valuemin": 0, "aria-valuemax": max || 0, "aria-valuenow": value,
  }, fill);
}

export function table(caption, columns, rows) {
  return h("div", { class: "table-wrap" }, h("table", {},
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, columns.map(([name, numeric]) =>
      h("th", { scope: "col", class: numeric ? "num" : null }, name)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell, i) =>
      h("td", { class: columns[i][1] ? "num" : null }, cell)))))));
}

export function announce(text) {
  document.getElementById("announce").textContent = text;
}

// A field-by-field refusal (400 invalid_request) shown beside each field of a form; the
// field names are the API's, and each input's id is "f-<name>".
export function showFieldErrors(form, error) {
  for (const node of form.querySelectorAll(".field-error")) node.textContent = "";
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  const fields = (error && error.details && error.details.fields) || {};
  let first = null;
  for (const [name, problem] of Object.entries(fields)) {
    const input = form.querySelector(`#f-${CSS.escape(name)}`);
    const slot = form.querySelector(`#err-${CSS.escape(name)}`);
    if (!input || !slot) continue;
    input.setAttribute("aria-invalid", "true");
    slot.textContent = problem;
    first = first || input;
  }
  if (first) first.focus();
  return first !== null;
}

export function field(name, label, control, hint) {
  control.id = `f-${name}`;
  control.name = name;
  control.setAttribute("aria-describedby", `err-${name}${hint ? ` hint-${name}` : ""}`);
  const box = control.type === "checkbox" ? "field check" : "field";
  return h("div", { class: box },
    control.type === "checkbox" ? [control, " ", h("label", { for: control.id }, label)]
      : [h("label", { for: control.id }, label), control],
    hint ? h("p", { class: "note", id: `hint-${name}` }, hint) : null,
    h("p", { class: "field-error", id: `err-${name}` }));
}

export function notFound(what) {
  return h("section", {}, h("h1", {}, `${what} not found`),
    h("p", {}, `There is no such ${what.toLowerCase()} in this account.`),
    h("p", {}, h("a", { href: "#/" }, "Back to the sites")));
}

// A refusal in words: its message, and each field it names.
export function explain(error) {
  const fields = (error.details && error.details.fields) || {};
  const named = Object.entries(fields).map(([name, problem]) => `${name}: ${problem}`);
  return [error.message, ...named].join("; ");
}
