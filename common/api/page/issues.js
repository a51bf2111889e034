// A dataset's issues, a page at a time, each linking to its image and naming its file and line.
import {api, enc, q} from "./api.js";
import {tabs} from "./datasets.js";
import {empty, h, link, table, show} from "./dom.js";

export async function render(main, {params: [name], query}) {
  const d = encodeURIComponent(name);
  const code = query.get("code");
  const page = await api(`/datasets/${d}/issues` + q({page_size: 200, page_token: query.get("page")}));
  const shown = code ? page.issues.filter((i) => i.code === code) : page.issues;
  show(main, h("h1", {}, `${name}: issues`), tabs(name, "issues"),
    code ? h("p", {}, `Only ${code} on this page. `, link(`#/d/${d}/issues`, "Show every code")) : null,
    shown.length ? table(["code", "message", "file:line", "image"], shown.map((i) => [
      h("code", {}, i.code), i.message, i.file ? `${i.file}${i.line ? `:${i.line}` : ""}` : "–",
      imageOf(name, i.file) ? link(`#/d/${d}/image/${enc(imageOf(name, i.file))}`, "open") : "–"]), "Issues") :
      empty("No issues on this page. Files that fail a check (unreadable images, bad label rows, data.yaml) are listed here."),
    page.next_page_token ? h("nav", {class: "pager"}, link(`#/d/${d}/issues` + q({page: page.next_page_token, code}),
                                                           "Next page →")) : null);
}

// The image id of a file: the label path without .txt (the Ultralytics rule: the last /images/ becomes /labels/).
export function imageOf(dataset, file) {
  const prefix = `datasets/${dataset}/`;
  if (!file || !file.startsWith(prefix)) return null;
  const path = file.slice(prefix.length);
  const at = path.lastIndexOf("images/");
  const label = at >= 0 && (at === 0 || path[at - 1] === "/") ? path.slice(0, at) + "labels/" + path.slice(at + 7) : path;
  return label.startsWith("labels/") || label.includes("/labels/") ? label.replace(/\.[^./]+$/, "") : null;
}
