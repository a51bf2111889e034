// The gallery: one page of images at a time (the API's page tokens), thumbnails with their boxes drawn in class
// colours, filters kept in the address so that a filtered page can be shared.
import {api, enc, imageUrl, q} from "./api.js";
import {drawAll, fitted, legend, overlay} from "./boxes.js";
import {dropHint, tabs} from "./datasets.js";
import {count, empty, h, link, show} from "./dom.js";

const PAGE_SIZE = 100;
const FILTERS = ["split", "class", "status", "has_issues", "has_proposals"];
const SORTS = {"": null, boxes: (i) => -i.labels.length, issues: (i) => -i.issues.length};

export async function render(main, {params: [name], query}) {
  const d = encodeURIComponent(name);
  const filters = Object.fromEntries(FILTERS.map((f) => [f, query.get(f)]));
  const token = query.get("page") || null;
  const sort = query.get("sort") || "";
  const filtered = FILTERS.some((f) => filters[f]);
  // With at most one filter the API sorts every page (each pair has its index); with more, only the page shown.
  const sortsAll = sortsEveryPage(query);
  const [info, page] = await Promise.all([api(`/datasets/${d}`), api(`/datasets/${d}/images` +
    q({...filters, ...(sort && sortsAll ? {sort} : {}), page_size: PAGE_SIZE, page_token: token}))]);
  const images = SORTS[sort] && !sortsAll ? [...page.images].sort((a, b) => SORTS[sort](a) - SORTS[sort](b)) : page.images;
  const grid = h("ul", {class: "gallery", "aria-label": "Images"}, images.map((image) => item(name, image, info.classes)));
  show(main, h("h1", {}, name), tabs(name, "gallery"), filterForm(name, info, query),
    h("ul", {class: "legend", "aria-label": "Class colours"}, legend(info.classes).map((c) =>
      h("li", {}, h("span", {class: "swatch", style: `background:${c.colour}`}), c.name))),
    images.length ? grid : empty(filtered ? "No image matches these filters: loosen them." :
                                 "No images in this dataset yet.", filtered ? null : await dropHint(name)),
    pager(name, query, token, page.next_page_token));
  performance.mark("gallery-listed");  // bench/page.py: the list drawn, before any thumbnail
  loadThumbnails(grid, name);
}

function item(dataset, image, classes) {
  const width = image.oriented_width || image.width || 1, height = image.oriented_height || image.height || 1;
  const shown = `${image.id.split("/").pop()}: ${count(image.labels.length, "box")}` +
    (image.issues.length ? `, ${count(image.issues.length, "issue")}` : "");
  const frame = h("span", {class: "frame", style: fitted(width, height, "var(--cell-h)")},
    h("img", {alt: `${image.path || image.id}, ${count(image.labels.length, "box")}`, "data-sha256": image.sha256 || "",
              decoding: "async"}),
    drawAll(overlay(width, height), image.labels, classes, width, height));
  if ((image.proposals || []).length) drawAll(frame.lastChild, image.proposals, classes, width, height, "proposal");
  return h("li", {"data-testid": "gallery-item", "data-image-id": image.id, class: image.issues.length ? "has-issues" : ""},
    h("a", {href: `#/d/${encodeURIComponent(dataset)}/image/${enc(image.id)}`}, h("span", {class: "cell"}, frame),
      h("span", {class: "caption"}, shown)));
}

function loadThumbnails(grid, dataset) {
  for (const img of grid.querySelectorAll("img[data-sha256]")) {
    const sha = img.dataset.sha256;
    if (!sha) { img.closest("li").classList.add("no-thumbnail"); continue; }
    imageUrl(`/datasets/${encodeURIComponent(dataset)}/thumbnails/${sha}`)
      .then((url) => { img.src = url; img.onload = () => img.closest("li")?.setAttribute("data-painted", "true"); })
      .catch(() => img.closest("li")?.classList.add("no-thumbnail"));
  }
}

function filterForm(dataset, info, query) {
  const select = (name, label, options) => h("span", {class: "field"}, h("label", {for: `filter-${name}`}, label),
    h("select", {name, id: `filter-${name}`},
      options.map(([value, text]) => h("option", {value, selected: (query.get(name) || "") === value}, text))));
  const any = ["", "any"];
  const form = h("form", {class: "filters", "aria-label": "Filters", onchange: () => form.requestSubmit(),
    onsubmit: (event) => {
      event.preventDefault();
      const chosen = Object.fromEntries([...new FormData(form)].filter(([, v]) => v));
      location.hash = `#/d/${encodeURIComponent(dataset)}/gallery` + q(chosen);
    }},
    select("split", "Split", [any, ["train", "train"], ["val", "val"], ["test", "test"], ["none", "none"]]),
    select("class", "Class", [any, ...(info.classes || []).map((c) => [c, c])]),
    select("status", "Status", [any, ...["labeled", "background", "unlabeled", "label_only"].map((s) => [s, s])]),
    select("has_issues", "Issues", [any, ["true", "with issues"], ["false", "without"]]),
    select("has_proposals", "Proposals", [any, ["true", "with proposals"], ["false", "without"]]),
    select("sort", sortsEveryPage(query) ? "Sort" : "Sort this page",
           [["", "by id"], ["boxes", "most boxes"], ["issues", "most issues"]]),
    h("noscript", {}, h("button", {type: "submit"}, "Apply")));
  return form;
}

function sortsEveryPage(query) { return FILTERS.filter((f) => query.get(f)).length <= 1; }

function pager(dataset, query, token, next) {
  const keep = Object.fromEntries([...query].filter(([k]) => k !== "page" && k !== "prev"));
  const base = `#/d/${encodeURIComponent(dataset)}/gallery`;
  const previous = (query.get("prev") || "").split(",").filter(Boolean);
  return h("nav", {class: "pager", "aria-label": "Pages"},
    token ? link(base + q({...keep, page: previous.at(-1) === "first" ? "" : previous.at(-1),
                           prev: previous.slice(0, -1).join(",")}), "← Previous page") : null,
    next ? link(base + q({...keep, page: next, prev: [...previous, token || "first"].join(",")}), "Next page →") : null);
}
