// A dataset's imports: start one from a URL (editors), follow each with its counts, cancel it, read its issues.
import {api} from "./api.js";
import {canEdit, roleOn, tabs} from "./datasets.js";
import {count, empty, fmt, h, show, table} from "./dom.js";

const POLL_MS = 2000;
const LIVE = new Set(["queued", "running"]);

export async function render(main, {params: [dataset]}) {
  const d = encodeURIComponent(dataset);
  let timer = null, stopped = false;
  const role = await roleOn(dataset);
  const status = h("p", {role: "status"});
  const body = h("div");
  const refresh = async () => {
    const {imports} = await api(`/imports?dataset=${d}`);
    body.replaceChildren(imports.length ? table(["import", "source", "layout", "status", "files", "MB", "issues", ""],
      imports.map((i) => [i.id, i.source, i.layout || "–",
        h("span", {}, h("span", {class: "nowrap"}, stateOf(i)), i.error ? `: ${i.error}` : ""),
        progress(i), megabytes(i.bytes_done || 0), issues(i),
        LIVE.has(i.status) && canEdit(role) ? cancelButton(i, refresh, status) : ""]), "Imports, newest first") :
      empty("No import yet. Give the URL of a zip, tar or tar.gz (YOLO, COCO or Pascal VOC, as any tool " +
            "exports it), or drop one at imports/" +
            `${dataset}.zip in the bucket.`));
    if (imports.some((i) => LIVE.has(i.status)) && !stopped) timer = setTimeout(refresh, POLL_MS);
  };
  const form = canEdit(role) ? h("form", {class: "controls", onsubmit: async (event) => {
    event.preventDefault();
    const data = new FormData(event.target);
    try {
      const answer = await api(`/datasets/${d}/imports`, {method: "POST", body: {url: data.get("url"),
        ...(data.get("format") ? {format: data.get("format")} : {})}});
      status.textContent = `Import ${answer.import_id} started.`;
      clearTimeout(timer);
      await refresh();
    } catch (error) { status.textContent = error.message; }
  }}, h("label", {}, "Archive URL ", h("input", {name: "url", type: "url", required: true, size: 50,
      placeholder: "https://… or gs://…"})),
    h("label", {}, "Format ", h("select", {name: "format"}, h("option", {value: ""}, "as the files say"),
      h("option", {}, "yolo"), h("option", {}, "coco"))),
    h("button", {type: "submit"}, "Import")) : h("p", {class: "muted"}, "Editors may import archives.");
  show(main, h("h1", {}, `${dataset}: imports`), tabs(dataset, "imports"), form, status, body);
  await refresh();
  return () => { stopped = true; clearTimeout(timer); };
}

// "running (staging)": the kernel's status, and while running the import's phase (staging, staged, unpacking).
const stateOf = (i) => (i.status === "running" && i.phase ? `running (${i.phase})` : i.status);

const megabytes = (bytes) => (bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0);

function progress(i) {
  const total = i.members_total == null ? "?" : fmt(i.members_total);
  return h("span", {"data-testid": "import-progress", class: "nowrap"}, `${fmt(i.members_done)} / ${total}`);
}

function issues(i) {
  if (!i.issues_total) return "–";
  return h("details", {}, h("summary", {}, count(i.issues_total, "issue")),
    h("ul", {}, i.issues.map((issue) => h("li", {}, h("code", {}, issue.code), " ", issue.message))));
}

function cancelButton(i, refresh, status) {
  return h("button", {type: "button", onclick: async () => {
    try { await api(`/imports/${encodeURIComponent(i.id)}/cancel`, {method: "POST"}); await refresh(); }
    catch (error) { status.textContent = error.message; }
  }}, "Cancel");
}
