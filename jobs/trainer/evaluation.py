"""The evaluation a registered model carries: Ultralytics' validation of best.pt on the
test split when the dataset has one (else val), per class (precision, recall, AP50,
AP50-95, instances) and the confusion matrix as numbers.

Ultralytics fills its confusion matrix only when it plots, and plotting wants a font
download; Evaluator fills it from the same per-image matching without plotting.
"""
from __future__ import annotations

from pathlib import Path

from ultralytics import YOLO
from ultralytics.models.yolo.detect import DetectionValidator


class Evaluator(DetectionValidator):
    def _process_batch(self, preds, batch):
        # ultralytics' BaseValidator sets confusion_matrix = None, unannotated, so it reads as always None;
        # init_metrics makes it a ConfusionMatrix before the first batch
        self.confusion_matrix.process_batch(preds, batch, conf=self.args.conf)  # type: ignore[attr-defined]
        return super()._process_batch(preds, batch)


def evaluate(weights: Path, data_yaml: Path, split: str, names: list[str], args: dict) -> dict:
    """{"split", "per_class": {name: {...}}, "confusion_matrix": {"labels", "matrix"}} of `weights` on `split`."""
    metrics = YOLO(str(weights)).val(data=str(data_yaml), split=split, plots=False, verbose=False,
                                     validator=Evaluator, **args)
    box = metrics.box
    per_class = {}
    for position, class_id in enumerate(metrics.ap_class_index):
        per_class[names[int(class_id)]] = {
            "precision": round(float(box.p[position]), 5), "recall": round(float(box.r[position]), 5),
            "mAP50": round(float(box.ap50[position]), 5), "mAP50-95": round(float(box.ap[position]), 5),
            "instances": int(metrics.nt_per_class[int(class_id)])}
    labels = [*names, "background"]
    matrix = metrics.confusion_matrix.matrix  # rows: predicted, columns: true; the last of each is background
    rows = [{"predicted": label, "true": [int(v) for v in row]} for label, row in zip(labels, matrix)]
    return {"split": split, "per_class": per_class,  # rows of objects: Firestore stores no array in an array
            "confusion_matrix": {"labels": labels, "rows": rows}}
