// Training: the form that requests it, the list of jobs, and a job's page whose curves grow while it runs.
import {api, q} from "./api.js";
import {lineChart} from "./chart.js";
import {canEdit, roleOn, tabs} from "./datasets.js";
import {empty, fmt, h, link, table, show} from "./dom.js";

const POLL_MS = 1000;
const LIVE = new Set(["queued", "running"]);
// A model YAML, official weights by name (an operator pins their SHA-256), or a registered model id (never a path).
const MODELS = ["yolo11n.yaml", "yolov8n.yaml", "yolo11n.pt", "yolo11s.pt", "yolov8n.pt"];

export async function render(main, {params: [dataset]}) {
  const d = encodeURIComponent(dataset);
  const [role, versions, models] = await Promise.all([roleOn(dataset),
    api(`/datasets/${d}/versions`).catch(() => ({versions: []})),
    api("/models" + q({dataset, page_size: 20})).catch(() => ({models: []}))]);
  const status = h("p", {role: "alert", class: "form-error"});
  const number = (name, label, value, min, max) => h("label", {}, label,
    h("input", {name, type: "number", value, min, max, required: true}));
  const form = h("form", {class: "train-form", onsubmit: async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    try {
      const more = data.more.trim() ? JSON.parse(data.more) : {};
      const body = {...more, dataset, model: data.model, epochs: +data.epochs, imgsz: +data.imgsz, batch: +data.batch,
                    patience: +data.patience, ...(data.version ? {version: data.version} : {})};
      const {job_id} = await api("/training", {method: "POST", body});
      location.hash = `#/job/${encodeURIComponent(job_id)}`;
    } catch (error) { status.textContent = error.message; }
  }},
    h("label", {}, "Model (a YAML, official weights, or a model id of this dataset)",
      h("input", {name: "model", list: "models", value: "yolo11n.yaml", required: true}),
      h("datalist", {id: "models"}, [...MODELS, ...(models.models || []).map((m) => m.id)]
        .map((m) => h("option", {value: m})))),
    h("label", {}, "Data", h("select", {name: "version"}, h("option", {value: ""}, "the dataset as it is now"),
      (versions.versions || []).filter((v) => v.status === "completed").map((v) => h("option", {value: v.id}, `${v.id} ${v.name || ""}`)))),
    number("epochs", "Epochs", 50, 1, 10000), number("imgsz", "Image size", 640, 32, 4096),
    number("batch", "Batch (-1: automatic)", 16, -1, 1024), number("patience", "Patience", 50, 0, 10000),
    h("label", {class: "wide"}, "More arguments (JSON: optimizer, lr0, seed, mosaic, workers, …)",
      h("input", {name: "more", placeholder: '{"optimizer": "AdamW", "lr0": 0.001}'})),
    h("button", {type: "submit", class: "primary"}, "Start training"), status);
  show(main, h("h1", {}, `${dataset}: train`), tabs(dataset, "train"),
    canEdit(role) ? form : empty("Only editors may start training; ask an owner of this dataset."),
    h("h2", {}, "Jobs of this dataset"), await jobTable({dataset}));
}

export async function jobs(main) {
  show(main, h("h1", {}, "Training jobs"), await jobTable({}));
}

async function jobTable(filter) {
  const {jobs: list} = await api("/training" + q({...filter, page_size: 50}));
  if (!list.length) return empty("No training yet: open a dataset and choose “train”.");
  return table(["job", "dataset", "status", "epoch", "mAP50-95", "model"], list.map((j) => [
    link(`#/job/${encodeURIComponent(j.id)}`, j.id), j.dataset, h("span", {class: `badge ${j.status}`}, j.status),
    `${j.epoch ?? 0} / ${j.epochs ?? "?"}`, fmt(j.history?.at?.(-1)?.["mAP50-95"]),
    j.model_id ? link(`#/model/${encodeURIComponent(j.model_id)}`, j.model_id) : "–"]), "Jobs, newest first");
}

export async function job(main, {params: [jobId]}) {
  let timer = null, stopped = false;
  const body = h("div");
  const first = await api(`/training/${encodeURIComponent(jobId)}`);
  const role = await roleOn(first.dataset).catch(() => "viewer");
  show(main, h("h1", {}, `Job ${jobId}`), tabs(first.dataset, "train"), body);
  const refresh = async (current) => {
    show(body, jobView(current, canEdit(role), () => refresh(current)));
    if (!stopped && LIVE.has(current.status)) timer = setTimeout(async () => {
      try { await refresh(await api(`/training/${encodeURIComponent(jobId)}`)); } catch { /* next tick retries */ }
    }, POLL_MS);
  };
  await refresh(first);
  return () => { stopped = true; clearTimeout(timer); };
}

function jobView(job, editable, reload) {
  const history = [...(job.history || [])].sort((a, b) => a.epoch - b.epoch);
  const cancel = editable && LIVE.has(job.status) && !job.cancel_requested ? h("button", {type: "button", class: "danger",
    onclick: async (event) => {
      event.target.disabled = true;
      await api(`/training/${encodeURIComponent(job.id)}/cancel`, {method: "POST"});
      reload();
    }}, "Cancel after this epoch") : null;
  return [
    h("dl", {class: "facts", "aria-live": "polite"},
      ...fact("status", h("span", {class: `badge ${job.status}`, "data-testid": "job-status"}, job.status)),
      ...fact("epoch", `${job.epoch ?? 0} / ${job.epochs ?? "?"}`), ...fact("device", job.device || "–"),
      ...fact("run", job.run ?? "–"), ...fact("resumed from epoch", job.resumed_from_epoch ?? "–"),
      ...fact("executions", executions(job)),
      ...fact("images", job.images ? Object.entries(job.images).map(([k, v]) => `${k} ${v}`).join(", ") : "–"),
      ...fact("model", job.model_id ? link(`#/model/${encodeURIComponent(job.model_id)}`, job.model_id) : "–"),
      ...fact("requested", job.request ? `${job.request.model}, ${job.request.epochs} epochs, imgsz ${job.request.imgsz ?? 640}` : "–")),
    job.error ? h("p", {class: "error", role: "alert"}, job.error) : null,
    job.cancel_requested && LIVE.has(job.status) ? h("p", {}, "Cancel requested: it stops after the current epoch.") : null,
    cancel,
    history.length ? h("div", {class: "charts"},
      lineChart("Losses (train)", history, ["box_loss", "cls_loss", "dfl_loss"], job.epochs),
      lineChart("Validation", history, ["precision", "recall", "mAP50", "mAP50-95"], job.epochs),
      lineChart("Losses (validation)", history, ["val_box_loss", "val_cls_loss", "val_dfl_loss"], job.epochs)) :
      empty(LIVE.has(job.status) ? "Waiting for the first epoch: curves appear here as epochs end." : "No epoch was trained."),
  ];
}

const fact = (name, value) => [h("dt", {}, name), h("dd", {}, value)];

// A run longer than a task continues in a next execution from its checkpoint (docs/training.md, "Longer than a
// task"): how many there were, and after which epochs each one went on.
function executions(job) {
  const started = (job.executions || []).length;
  const after = (job.continuations || []).map((c) => c.after_epoch);
  if (!started) return "–";
  return h("span", {"data-testid": "job-executions"},
    `${started}` + (after.length ? ` (continued after epoch ${after.join(", ")})` : ""));
}
