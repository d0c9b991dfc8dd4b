// Jobs: the jobs this console started or was asked to watch, polled live through
// GET /v1/{project_id}/jobs/{job_id} (the public API has no job listing).

import { forgetFinished, isFinal, onJobsChanged, trackJob, trackedJobs } from "../jobs.js";
import { badge, button, formDialog, h, nameCell, progressBar, shortId, table, timeSpan } from "../ui.js";

const TYPES = { bksCreateBackup: "Backup", bksRestoreBackup: "Restore", bksDeleteBackup: "Delete backup" };

function result(j) {
  if (j.error) return h("div", { class: "fail" }, j.error);
  const job = j.job;
  if (!job) return h("span", { class: "muted" }, "waiting for the first answer…");
  if (job.status === "FAIL") {
    return h("div", { class: "fail" }, h("strong", { class: "error-code" }, job.error_code || "FAIL"), " ", job.fail_reason || "");
  }
  const e = job.entities || {};
  return h("div", { class: "entities" },
    e.backup_id ? h("div", {}, "backup ", shortId(e.backup_id)) : null,
    e.volume_id ? h("div", {}, "volume ", shortId(e.volume_id)) : null);
}

function jobsTable() {
  const cols = [
    { label: "Job", cell: (j) => nameCell(j.label, j.id) },
    { label: "Type", cell: (j) => TYPES[j.job?.job_type] || j.job?.job_type || "—" },
    { label: "Status", cell: (j) => badge(j.error ? "FAIL" : j.job?.status || "INIT") },
    { label: "Progress", class: "col-progress",
      cell: (j) => progressBar(j.job?.progress?.done ?? 0, j.job?.progress?.total ?? 0, j.job?.status === "SUCCESS") },
    { label: "Started (UTC)", cell: (j) => timeSpan(j.job?.begin_time, j.job?.end_time) },
    { label: "Result", class: "wrap", cell: result },
  ];
  return table(cols, trackedJobs(), {
    empty: "No jobs yet: backups, restores and deletions started here appear with their progress.",
    rowId: (j) => j.id, label: "Jobs",
  });
}

export async function render(el) {
  const panel = h("section", { class: "panel" }, jobsTable());
  const running = () => trackedJobs().filter((j) => !isFinal(j.job) && !j.error).length;
  const sub = h("p", { class: "subtitle" });
  const updateSub = () => { sub.textContent = `${running()} running · live from GET /v1/{project}/jobs/{id}`; };
  updateSub();
  el.replaceChildren(h("div", { class: "page" },
    h("div", { class: "page-header" },
      h("div", {}, h("h1", {}, "Jobs"), sub),
      h("div", { class: "page-actions" },
        button("Watch a job", () => formDialog({
          title: "Watch a job", submit: "Watch",
          fields: [{ name: "job", label: "Job ID", required: true }],
          onSubmit: async (v) => trackJob(v.job.trim(), "Watched job"),
        }), { small: false }),
        button("Clear finished", () => forgetFinished(), { small: false }))),
    h("div", { id: "view-alert" }),
    panel));
  return onJobsChanged(() => {
    panel.replaceChildren(jobsTable());
    updateSub();
  });
}

