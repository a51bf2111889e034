// Boxes drawn over an image in class colours: an SVG in the image's pixel space, laid over it.
import {s} from "./dom.js";

const PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324",
                 "#469990", "#800000", "#808000", "#000075", "#bfef45", "#fabed4", "#ffd8b1", "#dcbeff"];

export const colour = (classId) => PALETTE[((classId % PALETTE.length) + PALETTE.length) % PALETTE.length];
export const className = (box, classes) => box.class_name ?? classes?.[box.class_id] ?? String(box.class_id);

export function overlay(width, height) {
  return s("svg", {class: "overlay", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none",
                   "aria-hidden": "true"});
}

// One box: {class_id, cx, cy, w, h} normalized; kind is "box" or "proposal".
export function boxShape(box, classes, width, height, kind = "box") {
  const x = (box.cx - box.w / 2) * width, y = (box.cy - box.h / 2) * height;
  const name = className(box, classes);
  return s("rect", {x, y, width: box.w * width, height: box.h * height, class: kind,
                    stroke: colour(box.class_id), "data-testid": kind, "data-class": name,
                    "vector-effect": "non-scaling-stroke"},
           s("title", {}, kind === "proposal" ? `${name} (proposal, ${(box.confidence * 100).toFixed(1)}%)` : name));
}

export function drawAll(svg, boxes, classes, width, height, kind = "box") {
  for (const box of boxes) svg.append(boxShape(box, classes, width, height, kind));
  return svg;
}

export function legend(classes) {
  return (classes || []).map((name, id) => ({name, id, colour: colour(id)}));
}

// As large as fits both the width and `maxHeight`, keeping the image's proportions (boxes stay on their objects).
export const fitted = (width, height, maxHeight) =>
  `aspect-ratio:${width}/${height};width:min(100%, calc(${maxHeight} * ${(width / height).toFixed(4)}))`;
