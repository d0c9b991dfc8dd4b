// Backup policies (VBS /backuppolicy family): create, bind volumes, run now, tasks,
// switch ON/OFF, delete. #/policies/<policy id> shows that policy's tasks.

import { ApiError, del, get, post, put } from "../api.js";
import { trackJob } from "../jobs.js";
import { BUSY, badge, button, clearError, confirmDialog, formDialog, h, nameCell, pageHeader, shortId, timeSpan,
  showError, table, toast } from "../ui.js";
import { listVolumes } from "./volumes.js";

export const refreshOnJobs = true;

/** When each policy was last run from here: its tasks are polled for a while after. */
const lastRun = new Map();

function schedule(sp) {
  const days = sp.frequency === 1 ? "daily" : sp.frequency ? `every ${sp.frequency} days`
    : (sp.week_frequency || []).join(",");
  return `${days} ${sp.start_time}`;
}

function retention(sp) {
  if (sp.rentention_num) return `keep ${sp.rentention_num} backups`;
  if (sp.rentention_day) return `keep ${sp.rentention_day} days`;
  return "—";
}

function createPolicyDialog(ctx) {
  return formDialog({
    title: "Create policy",
    intro: "Scheduled backups of the volumes bound to the policy, with retention.",
    submit: "Create",
    fields: [
      { name: "name", label: "Policy name", required: true, hint: "Letters, digits, - and _; not starting with \"default\"." },
      { name: "start_time", label: "Start times (UTC)", value: "02:00", required: true, hint: "Whole hours, comma separated: 02:00,14:00" },
      { name: "frequency", label: "Every N days", type: "number", value: "1", min: 1, max: 30,
        hint: "Leave empty and fill the weekdays instead to run on given days." },
      { name: "week_frequency", label: "Weekdays", placeholder: "MON,THU" },
      { name: "rentention_num", label: "Keep newest N backups", type: "number", value: "7", min: 2, max: 99 },
      { name: "rentention_day", label: "Or keep for N days", type: "number", min: 2 },
      { name: "status", label: "Status", type: "select", value: "ON", options: [{ value: "ON", label: "ON (scheduled)" }, { value: "OFF", label: "OFF (run manually)" }] },
    ],
    onSubmit: async (v) => {
      const sp = { start_time: v.start_time.trim(), status: v.status };
      const weekdays = v.week_frequency.split(/[\s,]+/).filter(Boolean).map((d) => d.toUpperCase());
      if (weekdays.length) sp.week_frequency = weekdays;
      else if (v.frequency) sp.frequency = Number(v.frequency);
      if (v.rentention_num) sp.rentention_num = Number(v.rentention_num);
      else if (v.rentention_day) sp.rentention_day = Number(v.rentention_day);
      const r = await post("/v2/{p}/backuppolicy", { backup_policy_name: v.name, scheduled_policy: sp });
      toast(`Policy ${v.name} created`);
      ctx.navigate(`#/policies/${r.backup_policy_id}`);
    },
  });
}

/** Per-item failures of the association calls, shown with their API codes. */
function failuresToError(r) {
  const fails = r.fail_resources || [];
  if (fails.length === 0) return null;
  const f = fails[0];
  const more = fails.length > 1 ? ` (and ${fails.length - 1} more)` : "";
  return new ApiError(200, f.code, `${f.message}${more}`);
}

async function bindDialog(ctx, p, volumes, unbind = false) {
  return formDialog({
    title: `${unbind ? "Unbind volumes from" : "Bind volumes to"} ${p.backup_policy_name}`,
    intro: unbind ? "The volumes stop being backed up by this policy." : "A volume belongs to one policy at most: binding moves it here.",
    submit: unbind ? "Unbind" : "Bind",
    fields: [{ name: "volumes", label: "Volumes", type: "checkboxes", empty: "No volumes in this project.",
      options: volumes.map((v) => ({ value: v.id, label: `${v.name || v.id} (${v.size} GiB, ${v.status})` })) }],
    onSubmit: async (v) => {
      if (v.volumes.length === 0) throw new Error("Choose at least one volume.");
      const resources = v.volumes.map((id) => ({ resource_id: id, resource_type: "volume" }));
      const r = unbind
        ? await post(`/v2/{p}/backuppolicyresources/${p.backup_policy_id}/deleted_resources`, { resources })
        : await post("/v2/{p}/backuppolicyresources", { backup_policy_id: p.backup_policy_id, resources });
      const err = failuresToError(r);
      if (err) {
        ctx.refresh();
        throw err;
      }
      toast(`${r.success_resources.length} volume${r.success_resources.length === 1 ? "" : "s"} ${unbind ? "unbound" : "bound"}`);
      ctx.refresh();
    },
  });
}

async function tasksPanel(ctx, p, volumes) {
  const body = await get(`/v2/{p}/backuppolicy/${p.backup_policy_id}/backuptasks?limit=50`);
  const volName = (id) => volumes.find((v) => v.id === id)?.name;
  const cols = [
    { label: "Backup / task", cell: (t) => nameCell(t.backup_name, t.job_id) },
    { label: "Status", cell: (t) => badge(t.status) },
    { label: "Volume", cell: (t) => volName(t.resource_id) || shortId(t.resource_id) },
    { label: "Created (UTC)", cell: (t) => timeSpan(t.created_at, t.finished_at) },
    { label: "Job", cell: (t) => (t.vbs_job_id
      ? [h("div", {}, shortId(t.vbs_job_id)), button("Watch", () => { trackJob(t.vbs_job_id, `Policy ${p.backup_policy_name}: ${t.backup_name}`); ctx.navigate("#/jobs"); })]
      : "—") },
    { label: "Failure", class: "wrap", cell: (t) => (t.code ? h("div", { class: "fail" }, h("strong", { class: "error-code" }, t.code), " ", t.message || "") : "—") },
  ];
  const panel = h("section", { class: "panel", "aria-label": "Tasks" },
    h("div", { class: "panel-head" }, h("h2", {}, `Tasks of ${p.backup_policy_name}`), h("span", { class: "muted" }, `${body.count} in total`)),
    table(cols, body.tasks, { empty: "No tasks yet: run the policy now or wait for its schedule.", rowId: (t) => t.job_id, label: "Tasks" }));
  return { panel, busy: body.tasks.some((t) => BUSY.has(t.status)) };
}

export async function render(el, ctx) {
  const selected = location.hash.split("/")[2] || null;
  const [body, volumes] = await Promise.all([get("/v2/{p}/backuppolicy"), listVolumes()]);
  const policies = body.backup_policies;
  const cols = [
    { label: "Name / ID", cell: (p) => [h("a", { href: `#/policies/${p.backup_policy_id}`, class: "strong" }, p.backup_policy_name),
      h("div", {}, shortId(p.backup_policy_id))] },
    { label: "Schedule (UTC)", cell: (p) => schedule(p.scheduled_policy) },
    { label: "Retention", cell: (p) => retention(p.scheduled_policy) },
    { label: "Status", cell: (p) => badge(p.scheduled_policy.status) },
    { label: "Volumes", cell: (p) => String(p.policy_resource_count), class: "num" },
    {
      label: "Actions",
      class: "actions",
      cell: (p) => [
        button("Bind volumes", () => bindDialog(ctx, p, volumes), { title: `Bind volumes to ${p.backup_policy_name}` }),
        button("Unbind", () => bindDialog(ctx, p, volumes, true), { title: `Unbind volumes from ${p.backup_policy_name}` }),
        button("Run now", async () => {
          try {
            await post(`/v2/{p}/backuppolicy/${p.backup_policy_id}/action`);
            lastRun.set(p.backup_policy_id, Date.now());
            toast(`Policy ${p.backup_policy_name} started`);
            if (selected === p.backup_policy_id) ctx.refresh();
            else ctx.navigate(`#/policies/${p.backup_policy_id}`);
          } catch (err) {
            showError(err);
          }
        }, { title: `Run ${p.backup_policy_name} now` }),
        button("Tasks", () => ctx.navigate(`#/policies/${p.backup_policy_id}`), { title: `Tasks of ${p.backup_policy_name}` }),
        button(p.scheduled_policy.status === "ON" ? "Disable" : "Enable", async () => {
          try {
            await put(`/v2/{p}/backuppolicy/${p.backup_policy_id}`,
              { scheduled_policy: { status: p.scheduled_policy.status === "ON" ? "OFF" : "ON" } });
            ctx.refresh();
          } catch (err) {
            showError(err);
          }
        }),
        button("Delete", () => confirmDialog("Delete policy", `Delete policy ${p.backup_policy_name}? Backups it made are kept.`,
          "Delete", async () => {
            await del(`/v2/{p}/backuppolicy/${p.backup_policy_id}`);
            toast(`Policy ${p.backup_policy_name} deleted`);
            ctx.navigate("#/policies");
          }), { tone: "danger" }),
      ],
    },
  ];
  const chosen = policies.find((p) => p.backup_policy_id === selected);
  const tasks = chosen ? await tasksPanel(ctx, chosen, volumes) : null;
  clearError();
  el.replaceChildren(h("div", { class: "page" },
    pageHeader("Policies", "Scheduled backups with retention. Times are UTC.",
      button("Create policy", () => createPolicyDialog(ctx), { tone: "primary", small: false }),
      button("Refresh", () => ctx.refresh(), { small: false })),
    h("div", { id: "view-alert" }),
    h("section", { class: "panel" }, table(cols, policies, { empty: "No policies yet.", rowId: (p) => p.backup_policy_id, label: "Policies" })),
    tasks ? tasks.panel : null));
  const recent = chosen && Date.now() - (lastRun.get(chosen.backup_policy_id) || 0) < 10000;
  if (tasks?.busy || recent) {
    const t = setTimeout(ctx.refresh, 1500);
    return () => clearTimeout(t);
  }
  return null;
}
