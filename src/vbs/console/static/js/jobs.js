// Tracked jobs: the public API has no job listing, so the console remembers the
// job ids it started (per project, in localStorage) and polls each unfinished one
// with GET /v1/{project_id}/jobs/{job_id}. Listeners hear about every change.

import { get, loadSession } from "./api.js";

const FINAL = new Set(["SUCCESS", "FAIL"]);
const LIMIT = 50;
const listeners = new Set();
let timer = null;
let inflight = false;
let again = false;

function key() {
  const s = loadSession();
  return s ? `vbs.console.jobs.${s.project.id}` : null;
}

export function trackedJobs() {
  const k = key();
  if (!k) return [];
  try {
    return JSON.parse(localStorage.getItem(k) || "[]");
  } catch {
    return [];
  }
}

function store(jobs) {
  const k = key();
  if (k) localStorage.setItem(k, JSON.stringify(jobs.slice(0, LIMIT)));
}

export function onJobsChanged(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function emit(finished) {
  for (const fn of listeners) fn(finished);
}

/** Start watching a job; `label` says what it does ("Back up db01"). */
export function trackJob(jobId, label) {
  const jobs = trackedJobs().filter((j) => j.id !== jobId);
  jobs.unshift({ id: jobId, label, added: new Date().toISOString(), job: null, error: null });
  store(jobs);
  emit([]);
  poll();
}

export function forgetFinished() {
  store(trackedJobs().filter((j) => !j.job || !FINAL.has(j.job.status)));
  emit([]);
}

export function isFinal(job) {
  return !!job && FINAL.has(job.status);
}

async function poll() {
  if (inflight) {
    again = true;
    return;
  }
  inflight = true;
  try {
    await pollOnce();
  } finally {
    inflight = false;
  }
  if (again) {
    again = false;
    poll();
  }
}

async function pollOnce() {
  clearTimeout(timer);
  timer = null;
  const jobs = trackedJobs();
  const open = jobs.filter((j) => !isFinal(j.job) && !j.error);
  if (open.length === 0) return;
  const finished = [];
  await Promise.all(open.map(async (j) => {
    try {
      j.job = await get(`/v1/{p}/jobs/${encodeURIComponent(j.id)}`);
      if (isFinal(j.job)) finished.push(j);
    } catch (err) {
      if (err.status === 404) j.error = `${err.code}: ${err.apiMessage}`;
    }
  }));
  // Merge into the latest stored list (a job may have been added meanwhile).
  const latest = trackedJobs();
  for (const j of open) {
    const slot = latest.find((x) => x.id === j.id);
    if (slot) Object.assign(slot, { job: j.job, error: j.error });
  }
  store(latest);
  emit(finished);
  if (latest.some((j) => !isFinal(j.job) && !j.error)) timer = setTimeout(poll, 700);
}

/** Resume polling (after login or a reload). */
export function startPolling() {
  poll();
}

export function stopPolling() {
  clearTimeout(timer);
  timer = null;
}
