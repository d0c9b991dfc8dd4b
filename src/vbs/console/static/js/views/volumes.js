// Volumes: native v3 /volumes (create, list, delete) and "back up" through VBS cloudbackups.

import { del, get, post } from "../api.js";
import { BUSY, badge, button, clearError, confirmDialog, fmtTime, formDialog, h, nameCell, pageHeader,
  table, toast } from "../ui.js";
import { createBackupDialog } from "./backups.js";

export const refreshOnJobs = true;

export async function listVolumes() {
  const body = await get("/v3/{p}/volumes/detail", { native: true });
  return body.volumes;
}

function createVolumeDialog(ctx) {
  return formDialog({
    title: "Create volume",
    intro: "A sparse raw volume in the service's volume store.",
    submit: "Create",
    fields: [
      { name: "name", label: "Volume name", required: true },
      { name: "size", label: "Size (GiB)", type: "number", value: "1", min: 1, required: true },
      { name: "description", label: "Description" },
    ],
    onSubmit: async (v) => {
      const volume = { name: v.name, size: Number(v.size) };
      if (v.description) volume.description = v.description;
      const r = await post("/v3/{p}/volumes", { volume }, { native: true });
      toast(`Volume ${r.volume.name} created`);
      ctx.refresh();
    },
  });
}

export async function render(el, ctx) {
  const vols = await listVolumes();
  const cols = [
    { label: "Name / ID", cell: (v) => nameCell(v.name, v.id) },
    { label: "Size", cell: (v) => `${v.size} GiB`, class: "num" },
    { label: "Status", cell: (v) => badge(v.status) },
    { label: "Created (UTC)", cell: (v) => fmtTime(v.created_at) },
    {
      label: "Actions",
      class: "actions",
      cell: (v) => [
        button("Back up", () => createBackupDialog(ctx, vols, v.id), { title: `Back up ${v.name}` }),
        button("Delete", () => confirmDialog("Delete volume", `Delete volume ${v.name || v.id}? Its data is removed; backups stay.`,
          "Delete", async () => {
            await del(`/v3/{p}/volumes/${v.id}`, { native: true });
            toast(`Volume ${v.name || v.id} deleted`);
            ctx.refresh();
          }), { tone: "danger", title: `Delete ${v.name}` }),
      ],
    },
  ];
  clearError();
  el.replaceChildren(h("div", { class: "page" },
    pageHeader("Volumes", "Block volumes of this project.",
      button("Create volume", () => createVolumeDialog(ctx), { tone: "primary", small: false }),
      button("Refresh", () => ctx.refresh(), { small: false })),
    h("div", { id: "view-alert" }),
    h("section", { class: "panel" }, table(cols, vols, { empty: "No volumes yet: create one.", rowId: (v) => v.id, label: "Volumes" }))));
  if (vols.some((v) => BUSY.has(v.status))) {
    const t = setTimeout(ctx.refresh, 2000);
    return () => clearTimeout(t);
  }
  return null;
}
