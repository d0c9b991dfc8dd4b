// Small DOM helpers: element builder, badges, formatting, toasts, dialogs.
// Text always goes in through textContent, never innerHTML.

import { ApiError } from "./api.js";

/** h("td", {class: "x", onclick: fn}, child, ...) -> element. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const TONES = {
  available: "ok", SUCCESS: "ok", EXECUTE_SUCCESS: "ok", ON: "ok", "in-use": "info",
  creating: "busy", RUNNING: "busy", "backing-up": "busy", restoring: "busy",
  "restoring-backup": "busy", deleting: "busy", WAITING: "wait", INIT: "wait",
  error: "bad", FAIL: "bad", EXECUTE_FAIL: "bad", error_restoring: "bad", error_deleting: "bad",
  EXECUTE_TIMEOUT: "bad", SKIP: "muted", OFF: "muted",
};

export const BUSY = new Set(["creating", "backing-up", "restoring", "restoring-backup", "deleting", "INIT", "RUNNING", "WAITING"]);

export function badge(status) {
  return h("span", { class: `badge badge-${TONES[status] || "muted"}` }, status ?? "—");
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** API times are UTC, some without a zone suffix. */
export function fmtTime(s) {
  if (!s) return "—";
  const iso = /[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : `${s}Z`;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return s;
  return d.toISOString().replace("T", " ").slice(0, 19);
}

/** A name in bold with its id underneath (ids are never cut). */
export function nameCell(name, id) {
  return [h("div", { class: "strong" }, name || "—"), h("code", { class: "id", title: id }, id)];
}

/** Two stacked times: when it started and when it ended, with the duration. */
export function timeSpan(start, end) {
  if (!start) return "—";
  const t0 = Date.parse(/[zZ]$/.test(start) ? start : `${start}Z`);
  const t1 = end ? Date.parse(/[zZ]$/.test(end) ? end : `${end}Z`) : Date.now();
  const secs = Math.max(0, (t1 - t0) / 1000);
  const took = secs < 60 ? `${secs.toFixed(1)} s` : `${Math.floor(secs / 60)} min ${Math.round(secs % 60)} s`;
  return [h("div", {}, fmtTime(start)), h("div", { class: "muted small" }, end ? `took ${took}` : `running for ${took}`)];
}

/** A time as two stacked lines (date, then clock), for narrow columns. */
export function stackTime(s) {
  const t = fmtTime(s);
  if (!s || !t.includes(" ")) return t;
  const [day, clock] = t.split(" ");
  return [h("div", {}, day), h("div", { class: "muted small" }, clock)];
}

export function shortId(id) {
  return h("code", { class: "id", title: id }, id);
}

/** Progress bar with an accessible value; done/total in bytes (total may be 0/unknown). */
export function progressBar(done, total, finished) {
  const pct = total > 0 ? Math.min(100, Math.round((done / total) * 100)) : finished ? 100 : 0;
  return h(
    "div",
    { class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": pct,
      "aria-label": "Progress" },
    h("div", { class: "progress-fill", style: `width: ${pct}%` }),
    h("span", { class: "progress-text" }, `${pct}%${total > 0 ? ` · ${fmtBytes(done)} / ${fmtBytes(total)}` : ""}`),
  );
}

/** The visible form of an API error: its code in bold, then its message. */
export function errorBox(err) {
  const code = err instanceof ApiError ? err.code : "error";
  const message = err instanceof ApiError ? err.apiMessage : String(err?.message ?? err);
  return h("div", { class: "alert alert-error", role: "alert" },
    h("strong", { class: "error-code" }, code), " ", h("span", { class: "error-message" }, message));
}

export function toast(text, tone = "ok") {
  const box = document.getElementById("toasts");
  const t = h("div", { class: `toast toast-${tone}`, role: "status" }, text);
  box.append(t);
  while (box.children.length > 3) box.firstChild.remove();
  setTimeout(() => t.remove(), 4000);
}

/** Report an error of an action outside a dialog: in the view's alert area. */
export function showError(err) {
  const area = document.getElementById("view-alert");
  if (area) area.replaceChildren(errorBox(err));
  else toast(String(err.message || err), "bad");
}

export function clearError() {
  document.getElementById("view-alert")?.replaceChildren();
}

let fieldSeq = 0;

function field(f) {
  const id = `f-${f.name}-${(fieldSeq += 1)}`;
  const hint = f.hint ? h("small", { class: "hint", id: `${id}-hint` }, f.hint) : null;
  const describedBy = f.hint ? `${id}-hint` : undefined;
  if (f.type === "checkbox") {
    return h("div", { class: "field field-check" },
      h("input", { type: "checkbox", id, name: f.name, checked: !!f.value, "aria-describedby": describedBy }),
      h("label", { for: id }, f.label), hint);
  }
  if (f.type === "radio") {
    return h("fieldset", { class: "field" }, h("legend", {}, f.label),
      f.options.map((o, i) => {
        const rid = `${id}-${i}`;
        return h("div", { class: "field-check" },
          h("input", { type: "radio", id: rid, name: f.name, value: o.value, checked: o.value === f.value,
            onchange: f.onchange }),
          h("label", { for: rid }, o.label));
      }), hint);
  }
  if (f.type === "checkboxes") {
    return h("fieldset", { class: "field" }, h("legend", {}, f.label),
      f.options.length === 0 ? h("p", { class: "muted" }, f.empty || "Nothing to choose from.") : null,
      f.options.map((o, i) => {
        const cid = `${id}-${i}`;
        return h("div", { class: "field-check" },
          h("input", { type: "checkbox", id: cid, name: f.name, value: o.value, checked: !!o.checked }),
          h("label", { for: cid }, o.label));
      }), hint);
  }
  let input;
  const common = { id, name: f.name, required: f.required, "aria-describedby": describedBy, placeholder: f.placeholder };
  if (f.type === "select") {
    input = h("select", common, f.options.map((o) => h("option", { value: o.value, selected: o.value === f.value }, o.label)));
  } else if (f.type === "textarea") {
    input = h("textarea", { ...common, rows: f.rows || 4 }, f.value ?? "");
  } else {
    input = h("input", { ...common, type: f.type || "text", value: f.value ?? "", min: f.min, max: f.max,
      autocomplete: f.autocomplete || "off" });
  }
  return h("div", { class: "field", dataset: { field: f.name } }, h("label", { for: id }, f.label), input, hint);
}

/** Collect a form's values: checkbox -> bool, checkboxes -> array, others -> string. */
function values(form, fields) {
  const out = {};
  for (const f of fields) {
    if (f.type === "checkbox") out[f.name] = form.elements[f.name].checked;
    else if (f.type === "checkboxes") {
      out[f.name] = [...form.querySelectorAll(`input[name="${f.name}"]:checked`)].map((e) => e.value);
    } else if (f.type === "radio") {
      out[f.name] = form.querySelector(`input[name="${f.name}"]:checked`)?.value ?? "";
    } else out[f.name] = form.elements[f.name].value;
  }
  return out;
}

/**
 * A modal form. onSubmit(values) may throw: the API's code and message then show
 * inside the dialog and it stays open. Resolves true once submitted, false if cancelled.
 */
export function formDialog({ title, intro, fields, submit = "OK", danger = false, onSubmit, extra }) {
  return new Promise((resolve) => {
    const dialog = document.getElementById("dialog");
    const alert = h("div", { class: "dialog-alert" });
    const submitButton = h("button", { type: "submit", class: danger ? "btn btn-danger" : "btn btn-primary" }, submit);
    const form = h("form", { method: "dialog", class: "form" },
      h("h2", { class: "dialog-title" }, title),
      intro ? h("p", { class: "dialog-intro" }, intro) : null,
      alert,
      fields.map(field),
      extra || null,
      h("div", { class: "dialog-actions" },
        h("button", { type: "button", class: "btn", onclick: () => { dialog.close(); resolve(false); } }, "Cancel"),
        submitButton));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      submitButton.disabled = true;
      alert.replaceChildren();
      try {
        await onSubmit(values(form, fields), form);
        dialog.close();
        resolve(true);
      } catch (err) {
        alert.replaceChildren(errorBox(err));
      } finally {
        submitButton.disabled = false;
      }
    });
    dialog.replaceChildren(form);
    dialog.setAttribute("aria-label", title);
    dialog.oncancel = () => resolve(false);
    dialog.onclose = () => { if (!dialog.open) dialog.replaceChildren(); }; // no stale form left behind
    dialog.showModal();
    form.querySelector("input:not([type=hidden]), select, textarea")?.focus();
  });
}

export function confirmDialog(title, text, confirm = "Delete", onConfirm = async () => {}) {
  return formDialog({ title, intro: text, fields: [], submit: confirm, danger: true, onSubmit: onConfirm });
}

/** A data table: columns [{label, cell(row) -> node|string, class?}], rows, empty text. */
export function table(columns, rows, { empty = "Nothing here yet.", rowId, label } = {}) {
  return h("table", { class: "grid", "aria-label": label },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.class }, c.label)))),
    h("tbody", {}, rows.length === 0
      ? h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, empty))
      : rows.map((r) => h("tr", { dataset: rowId ? { id: rowId(r) } : {} },
        columns.map((c) => h("td", { class: c.class, "data-col": c.label }, c.cell(r)))))));
}

export function button(label, onclick, { tone = "", small = true, disabled = false, title } = {}) {
  return h("button", { type: "button", class: `btn ${small ? "btn-sm" : ""} ${tone ? `btn-${tone}` : ""}`, onclick, disabled, title },
    label);
}

/** Page header: title, subtitle and right-aligned action buttons. */
export function pageHeader(title, subtitle, ...actions) {
  return h("div", { class: "page-header" },
    h("div", {}, h("h1", {}, title), subtitle ? h("p", { class: "subtitle" }, subtitle) : null),
    h("div", { class: "page-actions" }, actions));
}
