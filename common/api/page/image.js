// One image: the full image with its boxes, its issues and duplicates, its proposals, and for editors a box
// editor (draw, move, resize, delete, change class, keys, undo). Save writes PUT .../labels with If-Match; a
// conflict (412) shows the other version and lets the person choose, never overwriting silently.
import {api, ApiError, enc, imageUrl} from "./api.js";
import {boxShape, className, colour, drawAll, fitted, overlay} from "./boxes.js";
import {canEdit, roleOn, tabs} from "./datasets.js";
import {count, empty, h, link, s, show} from "./dom.js";
import {imageOf} from "./issues.js";

const MIN_SIDE = 0.004;  // a box narrower than this (normalized) is a stray click, not a box
const HELP = [["drag on the image", "draw a box"], ["drag a box / its corners", "move / resize"],
              ["N", "a new box in the middle"], ["Alt+arrow keys", "resize the selected box"],
              ["[ and ]", "previous / next box"], ["1–9", "set the selected box's class"],
              ["arrow keys (Shift: ×10)", "move the selected box"], ["Delete", "delete it"],
              ["Ctrl+Z", "undo"], ["Ctrl+S", "save"], ["Esc", "deselect"]];

export async function render(main, {params: [dataset, imageId]}) {
  const d = encodeURIComponent(dataset);
  const [image, info, role] = await Promise.all([api(`/datasets/${d}/images/${enc(imageId)}`),
                                                 api(`/datasets/${d}`), roleOn(dataset)]);
  const editor = new Editor(dataset, image, info.classes || [], canEdit(role));
  show(main, h("h1", {}, image.path || image.id), tabs(dataset, null),
    h("div", {class: "image-view"}, editor.stage, h("aside", {class: "side"}, editor.panel,
      proposalsPanel(editor), issuesPanel(dataset, image), duplicatesPanel(dataset, image), photoPanel(image))));
  editor.loadImage();
  return () => editor.stop();
}

class Editor {
  constructor(dataset, image, classes, editable) {
    Object.assign(this, {dataset, image, classes, editable});
    this.width = image.oriented_width || image.width || 1;
    this.height = image.oriented_height || image.height || 1;
    this.boxes = image.labels.map(({class_id, cx, cy, w, h: hh}) => ({class_id, cx, cy, w, h: hh}));
    this.generation = image.label_generation;
    this.history = [];
    this.selected = -1;
    this.currentClass = 0;
    this.svg = overlay(this.width, this.height);
    this.svg.setAttribute("aria-hidden", "false");
    this.svg.setAttribute("role", "img");
    this.img = h("img", {alt: `${image.path || image.id} (${this.width}×${this.height})`});
    this.stage = h("div", {class: "stage" + (editable ? " editable" : ""), tabindex: "0",
                           "aria-label": editable ? "Image with boxes: draw with the mouse, keys below" : "Image with boxes",
                           style: fitted(this.width, this.height, "78vh")}, this.img, this.svg);
    this.status = h("p", {role: "status", class: "status"});
    this.list = h("ol", {class: "box-list"});
    this.panel = h("section", {class: "panel"}, h("h2", {}, `Boxes`), this.controls(), this.list, this.status,
                   editable ? h("details", {}, h("summary", {}, "Keyboard"),
                                h("dl", {class: "keys"}, HELP.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))) : null);
    if (editable) this.listen();
    this.draw();
  }

  async loadImage() {
    try {
      this.img.onload = () => this.stage.setAttribute("data-loaded", "true");
      this.img.onerror = () => this.showThumbnail();  // a format the browser cannot draw (HEIC, TIFF, DNG)
      this.img.src = await imageUrl(`/datasets/${encodeURIComponent(this.dataset)}/files/${enc(this.image.id)}`);
    } catch (error) { this.stage.classList.add("no-image"); this.img.alt = `the image could not be read: ${error.message}`; }
  }

  async showThumbnail() {
    this.img.onerror = null;
    if (!this.image.sha256) return;
    this.status.textContent = `This browser cannot show ${this.image.format || "this format"}: shown from its 256 px thumbnail.`;
    this.img.src = await imageUrl(`/datasets/${encodeURIComponent(this.dataset)}/thumbnails/${this.image.sha256}`);
  }

  stop() { window.removeEventListener("keydown", this.onKey); }

  controls() {
    if (!this.editable) return h("p", {class: "muted"}, "You may look; editors may change boxes.");
    this.classSelect = h("select", {name: "class", onchange: () => this.setClass(Number(this.classSelect.value))},
      this.classes.map((name, id) => h("option", {value: id}, `${id + 1}. ${name}`)));
    this.saveButton = h("button", {type: "button", class: "primary", onclick: () => this.save()}, "Save");
    this.classSelect.id = "box-class";
    return h("div", {class: "controls"}, h("label", {for: "box-class"}, "Class"), this.classSelect,
      h("button", {type: "button", onclick: () => this.undo()}, "Undo"),
      h("button", {type: "button", onclick: () => this.remove()}, "Delete box"), this.saveButton);
  }

  // ---- drawing ----
  draw() {
    this.svg.replaceChildren();
    this.boxes.forEach((box, index) => {
      const shape = boxShape(box, this.classes, this.width, this.height);
      shape.dataset.index = index;
      if (index === this.selected) shape.classList.add("selected");
      this.svg.append(shape);
      if (index === this.selected && this.editable) this.svg.append(...this.handles(box));
    });
    drawAll(this.svg, this.image.proposals || [], this.classes, this.width, this.height, "proposal");
    this.list.replaceChildren(...this.boxes.map((box, index) => h("li", {},
      h("button", {type: "button", class: index === this.selected ? "selected" : "", "aria-pressed": index === this.selected,
                   onclick: () => this.select(index)},
        h("span", {class: "swatch", style: `background:${colour(box.class_id)}`}), className(box, this.classes),
        ` ${Math.round(box.w * this.width)}×${Math.round(box.h * this.height)}`))));
    if (!this.boxes.length) this.list.append(h("li", {class: "muted"}, this.editable ?
      "No boxes: drag on the image to draw one (Save with none marks a background image)." : "No boxes."));
    if (this.saveButton) this.saveButton.disabled = !this.history.length;
    if (this.classSelect) this.classSelect.value = this.selected >= 0 ? this.boxes[this.selected].class_id : this.currentClass;
  }

  handles(box) {
    const size = Math.max(this.width, this.height) / 60;
    return ["nw", "ne", "sw", "se"].map((corner) => {
      const x = (box.cx + (corner[1] === "e" ? 1 : -1) * box.w / 2) * this.width;
      const y = (box.cy + (corner[0] === "s" ? 1 : -1) * box.h / 2) * this.height;
      return s("rect", {class: "handle", "data-corner": corner, x: x - size / 2, y: y - size / 2, width: size, height: size});
    });
  }

  select(index) {
    this.selected = index;
    this.draw();
  }

  // ---- changes ----
  remember() { this.history.push(JSON.stringify(this.boxes)); }

  undo() {
    if (!this.history.length) return;
    this.boxes = JSON.parse(this.history.pop());
    this.selected = Math.min(this.selected, this.boxes.length - 1);
    this.draw();
  }

  remove() {
    if (this.selected < 0) return;
    this.remember();
    this.boxes.splice(this.selected, 1);
    this.selected = -1;
    this.draw();
  }

  setClass(classId) {
    if (classId >= this.classes.length) return;
    this.currentClass = classId;
    if (this.selected < 0) return this.draw();
    this.remember();
    this.boxes[this.selected].class_id = classId;
    this.draw();
  }

  nudge(dx, dy) {
    const box = this.boxes[this.selected];
    this.remember();
    box.cx = clamp(box.cx + dx / this.width, box.w / 2, 1 - box.w / 2);
    box.cy = clamp(box.cy + dy / this.height, box.h / 2, 1 - box.h / 2);
    this.draw();
  }

  addBox() {  // the keyboard's way to draw: a box in the middle, then arrows move it and Alt+arrows size it
    this.remember();
    this.boxes.push({class_id: this.currentClass, cx: 0.5, cy: 0.5, w: 0.25, h: 0.25});
    this.select(this.boxes.length - 1);
  }

  resize([dw, dh]) {
    const box = this.boxes[this.selected];
    this.remember();
    box.w = clamp(box.w + dw / this.width, MIN_SIDE, 1);
    box.h = clamp(box.h + dh / this.height, MIN_SIDE, 1);
    Object.assign(box, {cx: clamp(box.cx, box.w / 2, 1 - box.w / 2), cy: clamp(box.cy, box.h / 2, 1 - box.h / 2)});
    this.draw();
  }

  // ---- pointer: draw, move, resize ----
  listen() {
    this.svg.addEventListener("pointerdown", (event) => this.pointerDown(event));
    this.svg.addEventListener("pointermove", (event) => this.drag && this.drag(this.point(event)));
    const end = (event) => this.drag && this.pointerUp(event);
    this.svg.addEventListener("pointerup", end);
    this.svg.addEventListener("pointercancel", end);
    this.onKey = (event) => this.key(event);
    window.addEventListener("keydown", this.onKey);
  }

  point(event) {
    const p = new DOMPoint(event.clientX, event.clientY).matrixTransform(this.svg.getScreenCTM().inverse());
    return {x: clamp(p.x / this.width, 0, 1), y: clamp(p.y / this.height, 0, 1)};
  }

  pointerDown(event) {
    event.preventDefault();
    this.stage.focus({preventScroll: true});
    this.svg.setPointerCapture(event.pointerId);
    const start = this.point(event), target = event.target;
    this.remember();
    if (target.classList.contains("handle")) this.drag = this.resizer(target.dataset.corner);
    else if (target.dataset.index !== undefined) {
      this.select(Number(target.dataset.index));
      this.drag = this.mover(start);
    } else this.drag = this.drawer(start);
  }

  pointerUp() {
    this.drag = null;
    const box = this.boxes[this.selected];
    if (box && (box.w < MIN_SIDE || box.h < MIN_SIDE)) { this.boxes.splice(this.selected, 1); this.selected = -1; }
    if (this.history.at(-1) === JSON.stringify(this.boxes)) this.history.pop();  // a click that changed nothing
    this.draw();
  }

  drawer(start) {
    this.boxes.push({class_id: this.currentClass, cx: start.x, cy: start.y, w: 0, h: 0});
    this.selected = this.boxes.length - 1;
    return (p) => { Object.assign(this.boxes[this.selected], fromCorners(start, p)); this.draw(); };
  }

  mover(start) {
    const box = this.boxes[this.selected], from = {cx: box.cx, cy: box.cy};
    return (p) => {
      box.cx = clamp(from.cx + p.x - start.x, box.w / 2, 1 - box.w / 2);
      box.cy = clamp(from.cy + p.y - start.y, box.h / 2, 1 - box.h / 2);
      this.draw();
    };
  }

  resizer(corner) {
    const box = this.boxes[this.selected];
    const fixed = {x: box.cx + (corner[1] === "e" ? -1 : 1) * box.w / 2, y: box.cy + (corner[0] === "s" ? -1 : 1) * box.h / 2};
    return (p) => { Object.assign(box, fromCorners(fixed, p)); this.draw(); };
  }

  key(event) {
    if (!this.stage.isConnected || event.target.closest?.("input, select, textarea")) return;
    const ctrl = event.ctrlKey || event.metaKey, k = event.key, step = event.shiftKey ? 10 : 1;
    const actions = {
      z: () => ctrl && this.undo(), s: () => ctrl && this.save(), Escape: () => this.select(-1),
      Delete: () => this.remove(), Backspace: () => this.remove(),
      "]": () => this.boxes.length && this.select((this.selected + 1) % this.boxes.length),
      "[": () => this.boxes.length && this.select((this.selected - 1 + this.boxes.length) % this.boxes.length),
      ArrowLeft: () => this.selected >= 0 && this.nudge(-step, 0), ArrowRight: () => this.selected >= 0 && this.nudge(step, 0),
      ArrowUp: () => this.selected >= 0 && this.nudge(0, -step), ArrowDown: () => this.selected >= 0 && this.nudge(0, step),
    };
    if (/^[1-9]$/.test(k) && !ctrl) return this.setClass(Number(k) - 1);
    if (k === "n" && !ctrl) return this.addBox();
    if (event.altKey && k.startsWith("Arrow") && this.selected >= 0) {
      event.preventDefault();
      return this.resize({ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step]}[k]);
    }
    const action = actions[k.length === 1 ? k.toLowerCase() : k];
    if (!action || (ctrl && !"zs".includes(k.toLowerCase()))) return;
    if (k.startsWith("Arrow") && this.selected < 0) return;
    event.preventDefault();
    action();
  }

  // ---- saving ----
  async save(overwrite = false) {
    const d = encodeURIComponent(this.dataset);
    const precondition = this.generation ? {"If-Match": String(this.generation)} : {"If-None-Match": "*"};
    this.status.textContent = "Saving…";
    try {
      const answer = await api(`/datasets/${d}/images/${enc(this.image.id)}/labels`, {method: "PUT", headers: precondition,
        body: {labels: this.boxes.map(({class_id, cx, cy, w, h: hh}) => ({class_id, cx, cy, w, h: hh}))}});
      this.generation = answer.generation;
      this.history = [];
      this.conflict?.remove();
      this.status.textContent = `Saved to ${answer.label_path} (generation ${answer.generation}).`;
      this.draw();
    } catch (error) {
      if (error instanceof ApiError && error.status === 412 && !overwrite) return this.showConflict(error.body);
      this.status.textContent = `Not saved: ${error.message}`;
    }
  }

  showConflict(theirs) {
    this.status.textContent = "Not saved: someone else saved this label meanwhile.";
    const preview = drawAll(overlay(this.width, this.height), theirs.labels || [], this.classes, this.width, this.height);
    preview.querySelectorAll("[data-testid=box]").forEach((r) => r.setAttribute("data-testid", "their-box"));
    const image = h("img", {alt: "the image with the other version's boxes", src: this.img.src});
    this.conflict?.remove();
    this.conflict = h("section", {class: "panel conflict", "data-testid": "conflict", role: "alert"},
      h("h2", {}, "The label changed while you edited"),
      h("p", {}, `The saved version has ${this.tally(theirs.labels || [])}; yours has ${this.tally(this.boxes)}.`),
      h("div", {class: "stage small", style: fitted(this.width, this.height, "200px")}, image, preview),
      h("div", {class: "controls"},
        h("button", {type: "button", onclick: () => this.takeTheirs(theirs)}, "Use the saved version"),
        h("button", {type: "button", class: "danger", onclick: () => { this.generation = theirs.generation; this.save(true); }},
          "Keep mine (replace the saved version)")));
    this.panel.after(this.conflict);
  }

  tally(boxes) {
    // "3 boxes (2 person, 1 bus)": what a person compares, rather than a generation number.
    const perClass = new Map();
    for (const box of boxes) {
      const name = this.classes?.[box.class_id] ?? `class ${box.class_id}`;
      perClass.set(name, (perClass.get(name) || 0) + 1);
    }
    const parts = [...perClass].map(([name, n]) => `${n} ${name}`).join(", ");
    return count(boxes.length, "box") + (parts ? ` (${parts})` : "");
  }

  takeTheirs(theirs) {
    this.remember();
    this.boxes = (theirs.labels || []).map(({class_id, cx, cy, w, h: hh}) => ({class_id, cx, cy, w, h: hh}));
    this.generation = theirs.generation;
    this.history = [];
    this.selected = -1;
    this.conflict.remove();
    this.status.textContent = "Showing the saved version.";
    this.draw();
  }
}

const percent = (c) => `${(c * 100).toFixed(c < 0.1 ? 1 : 0)}%`;
const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), Math.max(lo, hi));

function fromCorners(a, b) {
  const w = Math.abs(a.x - b.x), hh = Math.abs(a.y - b.y);
  return {cx: Math.min(a.x, b.x) + w / 2, cy: Math.min(a.y, b.y) + hh / 2, w, h: hh};
}

function proposalsPanel(editor) {
  const proposals = editor.image.proposals || [];
  if (!proposals.length) return null;
  const status = h("p", {role: "status"});
  const d = encodeURIComponent(editor.dataset), path = `/datasets/${d}/images/${enc(editor.image.id)}/proposals`;
  const act = (what, body) => async () => {
    status.textContent = `${what}…`;
    try {
      await api(`${path}/${what}`, {method: "POST", body});
      status.textContent = what === "accept" ? "Accepted: the label file is written; the index shows it in a moment." :
        "Rejected.";
      editor.image.proposals = [];
      editor.draw();
    } catch (error) { status.textContent = `Not done: ${error.message}`; }
  };
  return h("section", {class: "panel"}, h("h2", {}, `Proposals (${editor.image.proposal_model || "auto-labelling"})`),
    h("ul", {}, proposals.map((p) => h("li", {}, h("span", {class: "swatch", style: `background:${colour(p.class_id)}`}),
      `${className(p, editor.classes)} ${percent(p.confidence)}`))),
    editor.editable ? h("div", {class: "controls"},
      h("button", {type: "button", class: "primary", onclick: act("accept", {label_generation: editor.generation})}, "Accept"),
      h("button", {type: "button", onclick: act("reject")}, "Reject")) : null, status);
}

function issuesPanel(dataset, image) {
  return h("section", {class: "panel"}, h("h2", {}, `Issues (${image.issues.length})`), image.issues.length ?
    h("ul", {class: "issues"}, image.issues.map((i) => h("li", {}, h("code", {}, i.code), " ", i.message,
      i.file ? h("span", {class: "muted"}, ` — ${i.file}${i.line ? `:${i.line}` : ""}`) : null))) :
    h("p", {class: "muted"}, "None."));
}

// What the file says about itself: format, size, and from its EXIF when it has one, when and with what.
function photoPanel(image) {
  const exif = image.exif || {};
  const rows = [["format", image.format], ["size", image.width ? `${image.width}×${image.height}` : null],
                ["taken", exif.taken_at ? exif.taken_at.replace("T", " ") : null],
                ["camera", [exif.camera_make, exif.camera_model].filter(Boolean).join(" ") || null],
                ["GPS", image.exif ? (exif.gps ? "present (not kept)" : "none") : null]].filter(([, v]) => v);
  return rows.length ? h("section", {class: "panel"}, h("h2", {}, "File"),
    h("dl", {class: "facts"}, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))) : null;
}

function duplicatesPanel(dataset, image) {
  if (!image.duplicates.length) return null;
  return h("section", {class: "panel"}, h("h2", {}, "Same content elsewhere"), h("ul", {}, image.duplicates.map((dup) =>
    h("li", {}, imageOf(dataset, dup) ? link(`#/d/${encodeURIComponent(dataset)}/image/${enc(imageOf(dataset, dup))}`, dup) : dup))));
}

export {empty};
