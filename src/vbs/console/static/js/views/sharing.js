// Sharing (os-vendor-backup-sharing): shares this project made, and shares made to it.

import { del, get } from "../api.js";
import { badge, button, clearError, confirmDialog, fmtTime, h, nameCell, pageHeader, shortId, table, toast } from "../ui.js";

function columns(ctx, mine) {
  const cols = [
    { label: "Backup / ID", cell: (s) => nameCell(s.backup?.name, s.backup_id) },
    { label: mine ? "Shared with" : "Shared by", cell: (s) => shortId(mine ? s.to_project_id : s.from_project_id) },
    { label: "Backup status", cell: (s) => badge(s.backup?.status) },
    { label: "Size", cell: (s) => (s.backup ? `${s.backup.size} GiB` : "—"), class: "num" },
    { label: "Shared at (UTC)", cell: (s) => fmtTime(s.created_at) },
  ];
  if (mine) {
    cols.push({
      label: "Actions",
      class: "actions",
      cell: (s) => button("Cancel sharing", () => confirmDialog("Cancel sharing",
        `Stop sharing ${s.backup?.name || s.backup_id} with project ${s.to_project_id}?`, "Cancel sharing", async () => {
          await del(`/v2/{p}/os-vendor-backup-sharing/${s.id}`);
          toast("Sharing cancelled");
          ctx.refresh();
        }), { tone: "danger" }),
    });
  }
  return cols;
}

export async function render(el, ctx) {
  const [mine, toMe] = await Promise.all([
    get("/v2/{p}/os-vendor-backup-sharing/detail"),
    get("/v2/{p}/os-vendor-backup-sharing/detail?share_to_me=true"),
  ]);
  clearError();
  el.replaceChildren(h("div", { class: "page" },
    pageHeader("Sharing", "Share backups from the Backups page; recipients can see them here but not restore or delete them.",
      button("Refresh", () => ctx.refresh(), { small: false })),
    h("div", { id: "view-alert" }),
    h("section", { class: "panel", "aria-label": "Shared by this project" },
      h("div", { class: "panel-head" }, h("h2", {}, "Shared by this project")),
      table(columns(ctx, true), mine.shared, { empty: "This project shares no backups.", rowId: (s) => s.id, label: "Shared by this project" })),
    h("section", { class: "panel", "aria-label": "Shared with this project" },
      h("div", { class: "panel-head" }, h("h2", {}, "Shared with this project")),
      table(columns(ctx, false), toMe.shared, { empty: "No backups are shared with this project.", rowId: (s) => s.id, label: "Shared with this project" }))));
  return null;
}
