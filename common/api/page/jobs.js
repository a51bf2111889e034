// Every job of every kind (training, imports, exports, versions, class remaps, revalidations, auto-labelling,
// bulk accepts) in one list, as GET /jobs shows them: the kernel's status, the kind's own step, one progress bar,
// what went wrong and what to do next, and a Cancel button where the job can stop safely.
import {api, q} from "./api.js";
import {canEdit, roleOn, tabs} from "./datasets.js";
import {empty, fmt, h, link, show, table} from "./dom.js";

const POLL_MS = 2000;
const LIVE = new Set(["queued", "running"]);
const LIMIT = 50;

export async function render(main, {params: [dataset]}) {
  const role = await roleOn(dataset);
  const list = jobList({dataset}, canEdit(role));
  show(main, h("h1", {}, `${dataset}: jobs`), tabs(dataset, "jobs"), list.status, list.body);
  return list.start();
}

export async function all(main) {
  // Cancel buttons show on every cancellable job; the API refuses (and the page says why) where the caller
  // is not an editor of the job's dataset.
  const list = jobList({}, true);
  show(main, h("h1", {}, "Jobs"), h("p", {class: "muted"}, `The newest ${LIMIT} jobs of the datasets you may see.`),
       list.status, list.body);
  return list.start();
}

function jobList(filter, editor) {
  let timer = null, stopped = false;
  const status = h("p", {role: "status"});
  const body = h("div");
  const refresh = async () => {
    clearTimeout(timer);
    const {items} = await api("/jobs" + q({...filter, limit: LIMIT}));
    body.replaceChildren(items.length ? table(
      ["job", ...(filter.dataset ? [] : ["dataset"]), "status", "progress", "asked", "by", ""],
      items.map((job) => [jobLink(job), ...(filter.dataset ? [] : [link(`#/d/${encodeURIComponent(job.dataset)}/jobs`,
        job.dataset)]), state(job), progress(job), age(job.created_at), job.requested_by || "–",
        job.cancellable && editor ? cancelButton(job, refresh, status) : ""]), "Jobs, newest first") :
      empty("No job yet. Training, imports, exports, versions, class changes and auto-labelling show here " +
            "while they run and after they end."));
    if (items.some((job) => LIVE.has(job.status)) && !stopped) timer = setTimeout(refresh, POLL_MS);
  };
  const start = async () => {
    await refresh();
    return () => { stopped = true; clearTimeout(timer); };
  };
  return {status, body, start};
}

// Where the page shows more about a job of this kind.
function jobLink(job) {
  const d = encodeURIComponent(job.dataset);
  const href = {training: `#/job/${encodeURIComponent(job.id)}`, import: `#/d/${d}/imports`,
                export: `#/d/${d}/versions`, version: `#/d/${d}/versions`}[job.kind];
  const name = h("span", {}, h("strong", {}, job.kind), " ", h("code", {}, job.id));
  return href ? link(href, name) : name;
}

function state(job) {
  return h("span", {"data-testid": "job-status"}, h("span", {class: "nowrap"}, job.status),
    job.phase ? h("span", {class: "muted"}, ` (${job.phase})`) : "",
    job.error ? h("span", {class: "error"}, `: ${job.error}`) : "");
}

function progress(job) {
  const {done, total, unit} = job.progress;
  const said = `${fmt(done)} / ${total == null ? "?" : fmt(total)} ${unit}`;
  return h("span", {class: "nowrap", "data-testid": "job-progress"},
    h("progress", {max: total || 1, value: total ? done : job.status === "completed" ? 1 : 0, "aria-label": said}),
    " ", said);
}

function age(seconds) {
  const ago = Math.max(0, Date.now() / 1000 - seconds);
  const [value, unit] = ago < 90 ? [ago, "s"] : ago < 5400 ? [ago / 60, "min"] : ago < 129600 ? [ago / 3600, "h"] :
    [ago / 86400, "d"];
  return h("span", {class: "nowrap", title: new Date(seconds * 1000).toISOString()}, `${Math.round(value)} ${unit} ago`);
}

function cancelButton(job, refresh, status) {
  return h("button", {type: "button", onclick: async () => {
    try {
      await api(`/jobs/${job.kind}/${encodeURIComponent(job.id)}/cancel`, {method: "POST"});
      status.textContent = `Cancelled ${job.kind} ${job.id}.`;
      await refresh();
    } catch (error) { status.textContent = error.message; }
  }}, "Cancel");
}
