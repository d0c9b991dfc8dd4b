// Console entry point: login screen, shell, hash router.

import { ApiError, loadSession, login, logout, setUnauthorizedHandler } from "./api.js";
import { onJobsChanged, startPolling, stopPolling, trackedJobs, isFinal } from "./jobs.js";
import { errorBox, h, toast } from "./ui.js";
import * as volumes from "./views/volumes.js";
import * as backups from "./views/backups.js";
import * as jobs from "./views/jobs.js";
import * as policies from "./views/policies.js";
import * as sharing from "./views/sharing.js";
import * as quotas from "./views/quotas.js";
import * as importer from "./views/import.js";

const VIEWS = { volumes, backups, jobs, policies, sharing, quotas, import: importer };
let current = null;
let renderSeq = 0;

function showLogin(error) {
  stopPolling();
  document.getElementById("toasts").replaceChildren();
  document.getElementById("dialog").close();
  document.getElementById("shell").hidden = true;
  document.getElementById("login-screen").hidden = false;
  const alert = document.getElementById("login-alert");
  alert.replaceChildren(error ? errorBox(error) : "");
  document.getElementById("login-user").focus();
}

function showShell(session) {
  document.getElementById("login-screen").hidden = true;
  document.getElementById("shell").hidden = false;
  document.getElementById("who-project").textContent = session.project.name;
  document.getElementById("who-project").title = session.project.id;
  document.getElementById("who-user").textContent = session.user.name;
  document.getElementById("who-roles").textContent = session.roles.join(", ");
  const admin = session.roles.includes("admin");
  for (const el of document.querySelectorAll(".admin-only")) el.hidden = !admin;
  startPolling();
  route();
}

/** Render the view named by the hash; views re-render on refresh() and on finished jobs. */
export async function route() {
  const session = loadSession();
  if (!session) {
    showLogin();
    return;
  }
  const name = (location.hash.replace(/^#\/?/, "").split("/")[0]) || "volumes";
  const view = VIEWS[name] && (name !== "import" || session.roles.includes("admin")) ? VIEWS[name] : VIEWS.volumes;
  for (const a of document.querySelectorAll(".sidebar a")) {
    a.classList.toggle("active", a.dataset.view === name);
    if (a.dataset.view === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  current?.cleanup?.();
  current = null;
  const seq = (renderSeq += 1);
  const main = document.getElementById("view");
  const ctx = {
    session,
    refresh: () => route(),
    navigate: (hash) => { location.hash = hash; },
  };
  // Each render builds a detached page; only the latest one is put on screen, so a
  // slow answer for a page the user already left can never overwrite the new one.
  const page = h("div", { class: "view-root" });
  try {
    const cleanup = await view.render(page, ctx);
    if (seq !== renderSeq) {
      cleanup?.();
      return;
    }
    main.replaceChildren(page);
    current = { view, cleanup };
  } catch (err) {
    if (seq !== renderSeq) return;
    main.replaceChildren(h("div", { class: "page" }, h("h1", {}, "Could not load this page"), errorBox(err)));
    current = { view, cleanup: null };
  }
}

function updateRunningBadge() {
  const open = trackedJobs().filter((j) => !isFinal(j.job) && !j.error).length;
  const el = document.getElementById("running-jobs");
  el.hidden = open === 0;
  el.replaceChildren(h("a", { href: "#/jobs", class: "running-link" }, `${open} job${open === 1 ? "" : "s"} running`));
}

function init() {
  setUnauthorizedHandler((err) => {
    logout();
    showLogin(err);
  });
  document.getElementById("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target.elements;
    const button = ev.target.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const session = await login(f.user.value.trim(), f.password.value, f.project.value.trim(), f.domain.value.trim());
      f.password.value = "";
      if (!location.hash) location.hash = "#/volumes";
      showShell(session);
    } catch (err) {
      showLogin(err instanceof ApiError ? err : new ApiError(0, "error", String(err)));
    } finally {
      button.disabled = false;
    }
  });
  document.getElementById("logout").addEventListener("click", async () => {
    await logout();
    showLogin();
  });
  window.addEventListener("hashchange", route);
  onJobsChanged((finished) => {
    updateRunningBadge();
    for (const j of finished) {
      const ok = j.job.status === "SUCCESS";
      toast(`${j.label}: ${ok ? "finished" : `failed (${j.job.error_code || "no code"})`}`, ok ? "ok" : "bad");
    }
    if (finished.length && current?.view.refreshOnJobs) route();
  });
  const session = loadSession();
  if (session) showShell(session);
  else showLogin();
  updateRunningBadge();
}

init();
