// Import (admins): registering an existing image file or block device is an
// operator action on the server (`vbs admin volume import`, limited to
// `volumes.import_roots`); the public API has no import call, so this view
// composes the exact command and lists the project's volumes to see the result.

import { badge, button, clearError, fmtTime, h, nameCell, pageHeader, table } from "../ui.js";
import { listVolumes } from "./volumes.js";

function quote(s) {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`;
}

export async function render(el, ctx) {
  const vols = await listVolumes();
  const out = h("pre", { class: "command", "aria-label": "Import command" });
  const inputs = {};
  const update = () => {
    const path = inputs.path.value.trim() || "/path/to/image-or-device";
    const parts = ["vbs", "admin", "volume", "import", quote(path), "--project", quote(inputs.project.value.trim() || ctx.session.project.name)];
    if (inputs.name.value.trim()) parts.push("--name", quote(inputs.name.value.trim()));
    parts.push("--data-dir", quote(inputs.dataDir.value.trim() || "DATA_DIR"));
    out.textContent = parts.join(" ");
  };
  const input = (key, id, label, value, hint) => {
    inputs[key] = h("input", { id, value, oninput: update, "aria-describedby": hint ? `${id}-hint` : undefined });
    return h("div", { class: "field" }, h("label", { for: id }, label), inputs[key],
      hint ? h("small", { class: "hint", id: `${id}-hint` }, hint) : null);
  };
  const form = h("form", { class: "form form-inline", onsubmit: (e) => e.preventDefault() },
    input("path", "import-path", "Source path", "", "An image file or block device under volumes.import_roots on the server."),
    input("name", "import-name", "Volume name", ""),
    input("project", "import-project", "Project", ctx.session.project.name),
    input("dataDir", "import-data-dir", "Data directory", "", "The server's --data-dir (or leave VBS_DATA_DIR set)."));
  update();
  const copy = button("Copy command", async () => {
    try {
      await navigator.clipboard.writeText(out.textContent);
      copy.textContent = "Copied";
    } catch {
      copy.textContent = "Select and copy";
    }
  }, { small: false });
  const cols = [
    { label: "Name / ID", cell: (v) => nameCell(v.name, v.id) },
    { label: "Size", cell: (v) => `${v.size} GiB`, class: "num" },
    { label: "Status", cell: (v) => badge(v.status) },
    { label: "Created (UTC)", cell: (v) => fmtTime(v.created_at) },
  ];
  clearError();
  el.replaceChildren(h("div", { class: "page" },
    pageHeader("Import volumes", "Register an existing image file or block device as a volume, without copying it.",
      button("Refresh", () => ctx.refresh(), { small: false })),
    h("div", { id: "view-alert" }),
    h("section", { class: "panel" },
      h("div", { class: "panel-head" }, h("h2", {}, "Run on the server")),
      h("p", {}, "Imports read the server's own disks, so they are an operator command on the server, not an API call. ",
        "Only paths under the ", h("code", {}, "volumes.import_roots"), " setting are accepted; the volume then is that file or device, and deleting it only unregisters it."),
      form, out, h("div", { class: "page-actions" }, copy)),
    h("section", { class: "panel" },
      h("div", { class: "panel-head" }, h("h2", {}, `Volumes of ${ctx.session.project.name}`)),
      table(cols, vols, { empty: "No volumes yet.", rowId: (v) => v.id, label: "Volumes" }))));
  return null;
}
