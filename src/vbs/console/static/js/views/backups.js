// Backups: listed through native v3 /backups/detail (3.45: metadata, count);
// created, restored and deleted through the VBS cloudbackups family, whose
// job ids the console tracks; tags edited as native backup metadata (PUT, 3.43);
// shared through os-vendor-backup-sharing.

import { del, get, post, put } from "../api.js";
import { trackJob } from "../jobs.js";
import { BUSY, badge, button, clearError, confirmDialog, formDialog, h, nameCell, pageHeader, shortId,
  stackTime, table, toast } from "../ui.js";
import { listVolumes } from "./volumes.js";

export const refreshOnJobs = true;

/** "k=v" items separated by commas or new lines -> [{key, value}] (order kept). */
export function parseTags(text) {
  return text.split(/[\n,]/).map((s) => s.trim()).filter(Boolean).map((item) => {
    const at = item.indexOf("=");
    return at < 0 ? { key: item, value: "" } : { key: item.slice(0, at).trim(), value: item.slice(at + 1).trim() };
  });
}

function tagsOf(b) {
  const out = [];
  const seen = new Set();
  for (const t of Array.isArray(b.tags) ? b.tags : []) {
    seen.add(t.key);
    out.push([t.key, t.value]);
  }
  for (const [k, v] of Object.entries(b.metadata || {})) if (!seen.has(k)) out.push([k, v]);
  return out;
}

function tagChips(b) {
  const tags = tagsOf(b);
  if (tags.length === 0) return h("span", { class: "muted" }, "—");
  return h("span", { class: "chips" }, tags.map(([k, v]) => h("span", { class: "chip" }, v === "" ? k : `${k}=${v}`)));
}

export function createBackupDialog(ctx, volumes, volumeId) {
  const usable = volumes.filter((v) => v.status === "available" || v.status === "in-use");
  return formDialog({
    title: "Create backup",
    intro: "The service snapshots the volume and stores only chunks it does not have yet.",
    submit: "Back up",
    fields: [
      { name: "volume", label: "Volume", type: "select", value: volumeId,
        options: (usable.length ? usable : volumes).map((v) => ({ value: v.id, label: `${v.name || v.id} (${v.size} GiB, ${v.status})` })) },
      { name: "name", label: "Backup name", required: true, hint: "Letters, digits, - and _; at most 64; not starting with \"auto\"." },
      { name: "description", label: "Description" },
      { name: "tags", label: "Tags", placeholder: "env=prod, team=db", hint: "key=value pairs, separated by commas." },
      { name: "full", label: "Force a full backup", type: "checkbox" },
    ],
    onSubmit: async (v) => {
      const backup = { volume_id: v.volume, name: v.name };
      if (v.description) backup.description = v.description;
      const tags = parseTags(v.tags);
      if (tags.length) backup.tags = tags;
      if (v.full) backup.extend_param = { FullBackup: "true" };
      const r = await post("/v2/{p}/cloudbackups", { backup });
      const vol = volumes.find((x) => x.id === v.volume);
      trackJob(r.job_id, `Back up ${vol?.name || v.volume} as ${v.name}`);
      toast(`Backup job ${r.job_id} started`);
      ctx.navigate("#/jobs");
    },
  });
}

function restoreDialog(ctx, b, volumes) {
  const targets = volumes.filter((v) => v.status === "available" && v.size >= b.size);
  const toggle = (ev) => {
    const form = ev.target.form;
    const toNew = form.querySelector("input[name=target]:checked").value === "new";
    form.querySelector("[data-field=volume_name]").hidden = !toNew;
    form.querySelector("[data-field=volume]").hidden = toNew;
  };
  const opened = formDialog({
    title: `Restore ${b.name || b.id}`,
    intro: `The target volume is overwritten with the backup's ${b.size} GiB.`,
    submit: "Restore",
    fields: [
      { name: "target", label: "Restore to", type: "radio", value: "new", onchange: toggle,
        options: [{ value: "new", label: "A new volume" }, { value: "existing", label: "An existing volume" }] },
      { name: "volume_name", label: "New volume name", value: `${b.name || "backup"}-restore` },
      { name: "volume", label: "Target volume", type: "select",
        options: targets.map((v) => ({ value: v.id, label: `${v.name || v.id} (${v.size} GiB)` })),
        hint: targets.length ? "Only available volumes at least as large as the backup." : "No available volume is large enough." },
    ],
    onSubmit: async (v) => {
      let volumeId = v.volume;
      let created = null;
      let label;
      if (v.target === "new") {
        const r = await post("/v3/{p}/volumes", { volume: { name: v.volume_name, size: b.size } }, { native: true });
        created = r.volume.id;
        volumeId = created;
        label = `Restore ${b.name} to new volume ${v.volume_name}`;
      } else {
        if (!volumeId) throw new Error("Choose a target volume.");
        label = `Restore ${b.name} to ${volumes.find((x) => x.id === volumeId)?.name || volumeId}`;
      }
      try {
        const r = await post(`/v2/{p}/cloudbackups/${b.id}/restore`, { restore: { volume_id: volumeId } });
        trackJob(r.job_id, label);
        toast(`Restore job ${r.job_id} started`);
      } catch (err) {
        if (created) await del(`/v3/{p}/volumes/${created}`, { native: true }).catch(() => {});
        throw err;
      }
      ctx.navigate("#/jobs");
    },
  });
  document.querySelector("#dialog [data-field=volume]").hidden = true;
  return opened;
}

function shareDialog(ctx, b) {
  return formDialog({
    title: `Share ${b.name || b.id}`,
    intro: "Recipients see the backup through the sharing API; they cannot restore or delete it.",
    submit: "Share",
    fields: [{ name: "projects", label: "Project IDs", required: true, hint: "One or more project ids, separated by commas or spaces." }],
    onSubmit: async (v) => {
      const ids = v.projects.split(/[\s,]+/).filter(Boolean);
      const r = await post("/v2/{p}/os-vendor-backup-sharing", { shared: { backup_id: b.id, to_project_ids: ids } });
      toast(`Shared with ${r.shared.length} project${r.shared.length === 1 ? "" : "s"}`);
      ctx.refresh();
    },
  });
}

function tagsDialog(ctx, b) {
  return formDialog({
    title: `Tags of ${b.name || b.id}`,
    intro: "Stored as the backup's metadata (native API, microversion 3.43).",
    submit: "Save tags",
    fields: [{ name: "tags", label: "Tags", type: "textarea",
      value: Object.entries(b.metadata || {}).map(([k, v]) => `${k}=${v}`).join("\n"), hint: "One key=value per line." }],
    onSubmit: async (v) => {
      const metadata = Object.fromEntries(parseTags(v.tags).map((t) => [t.key, t.value]));
      await put(`/v3/{p}/backups/${b.id}`, { backup: { metadata } }, { native: true });
      toast("Tags saved");
      ctx.refresh();
    },
  });
}

export async function render(el, ctx) {
  const [body, volumes] = await Promise.all([
    get("/v3/{p}/backups/detail?with_count=true", { native: true }),
    listVolumes(),
  ]);
  const backups = body.backups;
  const volName = (id) => volumes.find((v) => v.id === id)?.name;
  const cols = [
    { label: "Name / ID", cell: (b) => nameCell(b.name, b.id) },
    { label: "Volume", cell: (b) => volName(b.volume_id) || shortId(b.volume_id) },
    { label: "Size / type", cell: (b) => [h("div", {}, `${b.size} GiB`), h("div", { class: "muted small" }, b.is_incremental ? "incremental" : "full")] },
    { label: "Status", class: "wrap", cell: (b) => [badge(b.status), b.fail_reason ? h("div", { class: "fail" }, b.fail_reason) : null] },
    { label: "Created (UTC)", cell: (b) => stackTime(b.created_at) },
    { label: "Tags", class: "wrap", cell: tagChips },
    {
      label: "Actions",
      class: "actions",
      cell: (b) => [
        button("Restore", () => restoreDialog(ctx, b, volumes), { title: `Restore ${b.name}` }),
        button("Share", () => shareDialog(ctx, b), { title: `Share ${b.name}` }),
        button("Tags", () => tagsDialog(ctx, b), { title: `Tags of ${b.name}` }),
        button("Delete", () => confirmDialog("Delete backup", `Delete backup ${b.name || b.id}? Its shares are cancelled too.`,
          "Delete", async () => {
            const r = await del(`/v2/{p}/cloudbackups/${b.id}`);
            trackJob(r.job_id, `Delete backup ${b.name || b.id}`);
            toast(`Delete job ${r.job_id} started`);
            ctx.refresh();
          }), { tone: "danger", title: `Delete ${b.name}` }),
      ],
    },
  ];
  clearError();
  el.replaceChildren(h("div", { class: "page" },
    pageHeader("Backups", `${body.count ?? backups.length} backup${(body.count ?? backups.length) === 1 ? "" : "s"} in this project.`,
      button("Create backup", () => createBackupDialog(ctx, volumes, volumes[0]?.id), { tone: "primary", small: false, disabled: volumes.length === 0 }),
      button("Refresh", () => ctx.refresh(), { small: false })),
    h("div", { id: "view-alert" }),
    h("section", { class: "panel" }, table(cols, backups, { empty: "No backups yet.", rowId: (b) => b.id, label: "Backups" }))));
  if (backups.some((b) => BUSY.has(b.status))) {
    const t = setTimeout(ctx.refresh, 2000);
    return () => clearTimeout(t);
  }
  return null;
}
