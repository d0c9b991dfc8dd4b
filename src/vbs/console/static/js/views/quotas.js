// Quotas: GET /v2/{project_id}/cloudbackups/quota, as usage meters.

import { get } from "../api.js";
import { button, clearError, h, pageHeader } from "../ui.js";

const LABELS = { backups: ["Backups", ""], backup_gigabytes: ["Backup capacity", " GiB"] };

function card(r) {
  const [label, unit] = LABELS[r.type] || [r.type, ""];
  const unlimited = r.quota < 0;
  const pct = unlimited || r.quota === 0 ? 0 : Math.min(100, Math.round((r.used / r.quota) * 100));
  const tone = pct >= 90 ? "bad" : pct >= 75 ? "warn" : "ok";
  return h("section", { class: "panel quota-card", "aria-label": label, dataset: { type: r.type } },
    h("h2", {}, label),
    h("div", { class: "quota-figure" }, h("span", { class: "quota-used" }, `${r.used}${unit}`),
      h("span", { class: "muted" }, unlimited ? " used · no limit" : ` of ${r.quota}${unit}`)),
    h("div", { class: `meter meter-${tone}`, role: "meter", "aria-label": `${label} used`, "aria-valuemin": 0,
      "aria-valuemax": unlimited ? r.used || 1 : r.quota, "aria-valuenow": r.used },
    h("div", { class: "meter-fill", style: `width: ${unlimited ? 0 : pct}%` })),
    h("p", { class: "muted" }, unlimited ? "Unlimited" : `${pct}% used`, r.reserved ? ` · ${r.reserved} reserved` : ""));
}

export async function render(el, ctx) {
  const body = await get("/v2/{p}/cloudbackups/quota");
  clearError();
  el.replaceChildren(h("div", { class: "page" },
    pageHeader("Quotas", "Backup quotas of this project; set by the operator.", button("Refresh", () => ctx.refresh(), { small: false })),
    h("div", { id: "view-alert" }),
    h("div", { class: "cards" }, body.quotas.resources.map(card))));
  return null;
}
