// Datasets: the list, and one dataset's health at a glance.
import {api, enc, loadConfig, q, signedIn} from "./api.js";
import {colour} from "./boxes.js";
import {empty, fmt, h, link, table, show} from "./dom.js";

const SAMPLE = 1000;  // issues counted by code: the first page of them

export async function render(main) {
  const {datasets} = await api("/datasets" + q({page_size: 100}));
  show(main, h("h1", {}, "Datasets"), datasets.length ? h("ul", {class: "cards"}, datasets.map(card)) :
    empty("No dataset you may see yet.", await dropHint("<name>"),
          h("p", {}, "Or ask an owner of a dataset to add you as a member.")));
}

function card(dataset) {
  const st = dataset.stats;
  return h("li", {class: "card"},
    h("h2", {}, link(`#/d/${encodeURIComponent(dataset.id)}`, dataset.id)),
    h("dl", {class: "facts"}, ...fact("images", st.images), ...fact("labelled", st.labeled),
      ...fact("boxes", st.boxes), ...fact("issues", st.issues), ...fact("duplicates", st.duplicates)),
    h("p", {}, link(`#/d/${encodeURIComponent(dataset.id)}/gallery`, "Open the gallery")));
}

const fact = (name, value) => [h("dt", {}, name), h("dd", {}, fmt(value))];

export async function dropHint(name) {
  const config = await loadConfig();
  return h("p", {}, "Drop images and YOLO labels into ", h("code", {}, `gs://${config.bucket}/datasets/${name}/`),
           " (images/…, labels/…, data.yaml); they are indexed within seconds.");
}

export async function roleOn(dataset) {
  const {members} = await api(`/datasets/${encodeURIComponent(dataset)}/members`);
  return members.find((m) => m.uid === signedIn().uid)?.role || "viewer";
}
export const canEdit = (role) => role === "editor" || role === "owner";

export function tabs(dataset, current) {
  const d = encodeURIComponent(dataset);
  const items = [["health", `#/d/${d}`], ["gallery", `#/d/${d}/gallery`], ["issues", `#/d/${d}/issues`],
                 ["train", `#/d/${d}/train`], ["versions & exports", `#/d/${d}/versions`], ["imports", `#/d/${d}/imports`],
                 ["jobs", `#/d/${d}/jobs`],
                 ["members", `#/d/${d}/members`],
                 ["models", `#/models?dataset=${d}`]];
  return h("nav", {class: "tabs", "aria-label": `Dataset ${dataset}`},
    items.map(([name, href]) => link(href, name, {"aria-current": name === current ? "page" : null})));
}

export async function dataset(main, {params: [name]}) {
  const d = encodeURIComponent(name);
  const [info, issues] = await Promise.all([api(`/datasets/${d}`), api(`/datasets/${d}/issues` + q({page_size: SAMPLE}))]);
  const st = info.stats;
  show(main, h("h1", {}, name), tabs(name, "health"),
    st.images === 0 && st.labels_without_image === 0 ? empty("This dataset has no images yet.", await dropHint(name)) :
    h("div", {class: "health"},
      section("At a glance", h("dl", {class: "facts"}, ...fact("images", st.images), ...fact("labelled", st.labeled),
        ...fact("background", st.background), ...fact("unlabelled", st.unlabeled),
        ...fact("labels without image", st.labels_without_image), ...fact("boxes", st.boxes),
        ...fact("issues", st.issues), ...fact("duplicates", st.duplicates),
        ...Object.entries(st.splits || {}).flatMap(([split, n]) => fact(`split ${split}`, n)))),
      section("Boxes per class", bars(Object.entries(st.boxes_per_class || {}).map(([k, v], i) => [k, v, colour(i)]),
        info.classes_known ? "No boxes yet: label some images." : "No data.yaml yet: add one with the class names.")),
      section("Boxes per image", bars(Object.entries(st.boxes_per_image || {}), "No images.")),
      section("Box sizes (√ of the box's share of the image)", bars(Object.entries(st.box_sizes || {}), "No boxes.")),
      section(issues.next_page_token ? `Issues by code (first ${SAMPLE})` : "Issues by code",
        bars(countBy(issues.issues, (i) => i.code), "No issues.", (code) => `#/d/${d}/issues?code=${code}`))));
}

const section = (title, ...body) => h("section", {class: "panel"}, h("h2", {}, title), ...body);

function countBy(items, key) {
  const counts = new Map();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) || 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]);
}

function bars(rows, emptyText, hrefOf) {
  if (!rows.length || rows.every(([, n]) => n === 0)) return h("p", {class: "muted"}, emptyText);
  const top = Math.max(...rows.map(([, n]) => n), 1);
  return h("ul", {class: "bars"}, rows.map(([name, n, fill]) => h("li", {},
    h("span", {class: "bar-name"}, hrefOf ? link(hrefOf(name), name) : name),
    h("span", {class: "bar-track"}, h("span", {class: "bar", style: `width:${(100 * n) / top}%;` +
      (fill ? `background:${fill}` : "")})),
    h("span", {class: "bar-value"}, fmt(n)))));
}

export {table};
