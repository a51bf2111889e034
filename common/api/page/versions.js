// Versions and exports of a dataset: freeze a version, export it (YOLO, COCO or Pascal VOC), follow progress
// and see what each export holds (images and boxes per class, per split).
import {api} from "./api.js";
import {canEdit, roleOn, tabs} from "./datasets.js";
import {downloadButton} from "./models.js";
import {empty, fmt, h, table, show} from "./dom.js";

const POLL_MS = 2000;

export async function render(main, {params: [dataset]}) {
  const d = encodeURIComponent(dataset);
  let timer = null, stopped = false;
  const role = await roleOn(dataset);
  const status = h("p", {role: "status"});
  const body = h("div");
  const refresh = async () => {
    const [{versions}, {exports}] = await Promise.all([api(`/datasets/${d}/versions`),
                                                       api(`/exports?dataset=${d}&page_size=20`)]);
    body.replaceChildren(h("h2", {}, "Versions"), versions.length ? table(["version", "name", "status", "images", "created"],
      versions.map((v) => [v.id, v.name || "–", v.status, fmt(v.stats?.images), when(v.created_at)])) :
      empty("No version yet: freeze one to train or export exactly this data later."),
      h("h2", {}, "Exports (newest 20)"), exports.length ? table(["export", "format", "version", "status", "files", "holds", "created", "zip"],
        exports.map((e) => [e.id, e.format, e.version || "–", h("span", {}, h("span", {class: "nowrap"}, e.status), e.error ? `: ${e.error}` : ""),
          `${fmt(e.files_done)} / ${fmt(e.files_total)}`, holds(e), when(e.created_at),
          e.uri ? downloadButton(`/exports/${encodeURIComponent(e.id)}/zip`, `${e.id}.zip`, "zip") : "–"])) :
        empty("No export yet: export a version as YOLO, COCO or Pascal VOC above."));
    const live = versions.some((v) => v.status === "queued" || v.status === "running") ||
      exports.some((e) => e.status === "queued" || e.status === "running");
    if (live && !stopped) timer = setTimeout(refresh, POLL_MS);
  };
  const act = (fn) => async (event) => {
    event.preventDefault();
    try { status.textContent = await fn(new FormData(event.target)); clearTimeout(timer); await refresh(); }
    catch (error) { status.textContent = error.message; }
  };
  const forms = canEdit(role) ? h("div", {class: "controls"},
    h("form", {onsubmit: act(async (data) => {
      const answer = await api(`/datasets/${d}/versions`, {method: "POST", body: {name: data.get("name") || null}});
      return `Freezing ${answer.version}…`;
    })}, h("label", {}, "Name ", h("input", {name: "name"})), h("button", {type: "submit"}, "Freeze a version")),
    h("form", {onsubmit: act(async (data) => {
      const answer = await api(`/datasets/${d}/exports`, {method: "POST", body: {format: data.get("format"),
        ...(data.get("version") ? {version: data.get("version")} : {})}});
      return `Export ${answer.export_id} started.`;
    })}, h("label", {}, "Format ", h("select", {name: "format"}, h("option", {}, "yolo"), h("option", {}, "coco"),
      h("option", {}, "voc"))),
      h("label", {}, "Version (empty: freeze one) ", h("input", {name: "version", pattern: "v[0-9]+", size: 5})),
      h("button", {type: "submit"}, "Export"))) : h("p", {class: "muted"}, "Editors may freeze versions and export.");
  show(main, h("h1", {}, `${dataset}: versions & exports`), tabs(dataset, "versions & exports"), forms, status, body);
  await refresh();
  return () => { stopped = true; clearTimeout(timer); };
}

// "train: 3 images, person 2, bus 1; val: …": each split's images and its boxes per class (classes without any left out).
const holds = (e) => (e.splits ? Object.entries(e.splits).map(([split, images]) => [
  `${split}: ${fmt(images)} image${images === 1 ? "" : "s"}`,
  ...Object.entries(e.boxes_per_class?.[split] || {}).filter(([, boxes]) => boxes).map(([name, boxes]) => `${name} ${fmt(boxes)}`),
].join(", ")).join("; ") : "–");

const when = (t) => (t ? new Date(t * 1000).toLocaleString() : "–");
