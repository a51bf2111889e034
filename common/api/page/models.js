// Models: the list, and one model with its metrics, lineage, weights and "try it": upload an image, see the
// prediction function's boxes on it, and move a confidence slider (the boxes are fetched once, at conf 0.01).
import {api, download, predict, PREDICT_FLOOR, q} from "./api.js";
import {drawAll, fitted, overlay} from "./boxes.js";
import {tabs} from "./datasets.js";
import {empty, fmt, h, link, table, show} from "./dom.js";

const METRICS = ["precision", "recall", "mAP50", "mAP50-95"];

export async function render(main, {query}) {
  const dataset = query.get("dataset");
  const {models} = await api("/models" + q({dataset, page_size: 50}));
  show(main, h("h1", {}, dataset ? `${dataset}: models` : "Models"), dataset ? tabs(dataset, "models") : null,
    models.length ? table(["model", "dataset", "job", ...METRICS], models.map((m) => [
      link(`#/model/${encodeURIComponent(m.id)}`, m.id), m.dataset, link(`#/job/${encodeURIComponent(m.job_id)}`, m.job_id),
      ...METRICS.map((k) => fmt(m.metrics?.[k]))]), "Registered models, newest first") :
      empty("No model yet: a training job that completes registers one."));
}

export async function model(main, {params: [id]}) {
  const m = await api(`/models/${encodeURIComponent(id)}`);
  const evaluation = m.evaluation && !m.evaluation.error ? m.evaluation : null;
  show(main, h("h1", {}, `Model ${m.id}`), tabs(m.dataset, "models"),
    h("div", {class: "model-view"},
      h("section", {class: "panel"}, h("h2", {}, "Metrics"), h("dl", {class: "facts"},
        ...METRICS.flatMap((k) => fact(k, fmt(m.metrics?.[k]))))),
      h("section", {class: "panel"}, h("h2", {}, "Lineage"), h("dl", {class: "facts"},
        ...fact("dataset", link(`#/d/${encodeURIComponent(m.dataset)}`, m.dataset)),
        ...fact("job", link(`#/job/${encodeURIComponent(m.job_id)}`, m.job_id)), ...fact("base model", m.base_model || "–"),
        ...fact("epochs", fmt(m.epochs)), ...fact("manifest", h("code", {}, m.manifest || "–")))),
      h("section", {class: "panel"}, h("h2", {}, "Weights"), h("ul", {class: "downloads"},
        Object.entries(m.weights || {}).filter(([, uri]) => uri).map(([kind, uri]) => h("li", {},
          downloadButton(`/models/${encodeURIComponent(m.id)}/weights/${kind}`, `${m.id}-${uri.split("/").pop()}`,
                         uri.split("/").pop()), " ", h("code", {}, uri))))),
      evaluation ? h("section", {class: "panel wide"}, table(["class", ...METRICS, "instances"],
        Object.entries(evaluation.per_class || {}).map(([name, r]) => [name, ...METRICS.map((k) => fmt(r[k])), fmt(r.instances)]),
        `Evaluation on ${evaluation.split}`)) : null,
      tryIt(m)));
}

function tryIt(m) {
  if (!m.onnx || m.onnx.error) return h("section", {class: "panel wide"}, h("h2", {}, "Try it"),
    h("p", {class: "muted"}, `Prediction cannot use this model: ${m.onnx?.error || "it has no ONNX weights"}.`));
  const result = h("div", {class: "try-result"});
  const slider = h("input", {type: "range", min: PREDICT_FLOOR, max: 1, step: 0.001, value: 0.25, name: "conf",
                             "aria-label": "Confidence threshold"});
  const shown = h("output", {}, "0.25");
  let answer = null, url = null;
  const paint = () => {
    shown.textContent = Number(slider.value).toFixed(3);
    if (answer) showPrediction(result, url, answer, Number(slider.value));
  };
  slider.addEventListener("input", paint);
  const input = h("input", {type: "file", accept: "image/*", name: "image", onchange: async () => {
    const file = input.files[0];
    if (!file) return;
    result.replaceChildren(h("p", {role: "status"}, "Predicting…"));
    try {
      answer = await predict(m.id, file);
      if (url) URL.revokeObjectURL(url);
      url = URL.createObjectURL(file);
      paint();
    } catch (error) { result.replaceChildren(h("p", {class: "error", role: "alert"}, error.message)); }
  }});
  return h("section", {class: "panel wide try-it"}, h("h2", {}, "Try it"),
    h("label", {}, "An image ", input), h("label", {}, "Confidence at least ", slider, shown), result);
}

function showPrediction(result, url, answer, conf) {
  const p = answer.predictions[0];
  if (p.error) return result.replaceChildren(h("p", {class: "error"}, p.error.message));
  const boxes = p.boxes.filter((b) => b.confidence >= conf).map((b) => ({...b, w: b.w, h: b.h}));
  const frame = h("div", {class: "stage", style: fitted(p.width, p.height, "70vh")},
    h("img", {src: url, alt: `${p.source}: ${boxes.length} boxes at confidence ≥ ${conf.toFixed(3)}`}),
    drawAll(overlay(p.width, p.height), boxes, answer.classes, p.width, p.height));
  show(result, frame, h("p", {"data-testid": "prediction-count"}, `${boxes.length} boxes ≥ ${conf.toFixed(3)} ` +
    `(inference ${fmt(answer.speed_ms?.inference, 0)} ms)`), boxes.length ? table(["class", "confidence"],
    boxes.slice(0, 50).map((b) => [b.class_name, b.confidence.toFixed(3)])) :
    h("p", {class: "muted"}, "No box at this confidence: move the slider left."));
}

export function downloadButton(path, filename, text) {
  const status = h("span", {role: "status", class: "muted"});
  return h("span", {}, h("button", {type: "button", onclick: async () => {
    status.textContent = " downloading…";
    try { await download(path, filename); status.textContent = ""; } catch (error) { status.textContent = ` ${error.message}`; }
  }}, `Download ${text}`), status);
}

const fact = (name, value) => [h("dt", {}, name), h("dd", {}, value)];
