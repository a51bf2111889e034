"""How the command line shows things to a person: plain lines, aligned, with
bars drawn in text. Pure: strings in, strings out."""
from __future__ import annotations

BAR_WIDTH = 30
STAT_KEYS = ("images", "labeled", "background", "unlabeled", "labels_without_image", "boxes", "duplicates", "issues")
METRICS = (("box_loss", "box"), ("cls_loss", "cls"), ("dfl_loss", "dfl"), ("precision", "P"), ("recall", "R"),
           ("mAP50", "mAP50"), ("mAP50-95", "mAP50-95"))


def bar(value: int, largest: int, width: int = BAR_WIDTH) -> str:
    filled = round(width * value / largest) if largest else 0
    return "█" * filled + "·" * (width - filled)


def summary(view: dict) -> list[str]:
    stats = view["stats"]
    lines = [f"dataset {view['id']}: {len(view.get('classes') or [])} classes"
             + ("" if view.get("classes_known", True) else " (no data.yaml yet)")]
    lines += [f"  {key:<22}{stats.get(key, 0)}" for key in STAT_KEYS]
    splits = stats.get("splits") or {}
    if splits:
        lines.append("  splits                " + "  ".join(f"{k} {v}" for k, v in splits.items()))
    if view.get("pending_jobs"):
        lines.append(f"  pending jobs          {view['pending_jobs']} (the statistics are exact once it is 0)")
    return lines


def class_bars(boxes_per_class: dict[str, int]) -> list[str]:
    if not boxes_per_class:
        return []
    largest, width = max(boxes_per_class.values()), max(len(name) for name in boxes_per_class)
    return ["boxes per class:"] + [f"  {name:<{width}}  {bar(count, largest)} {count}"
                                   for name, count in boxes_per_class.items()]


def issue_line(issue: dict) -> str:
    where = issue["file"] + (f":{issue['line']}" if issue.get("line") else "")
    return f"  {issue['code']:<26}{where}\n  {'':<26}{issue['message']}"


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def epoch_line(row: dict, epochs: int | None) -> str:
    """`epochs`: the run's planned epochs, None when its view does not say."""
    metrics = "  ".join(f"{label} {_number(row[key])}" for key, label in METRICS if row.get(key) is not None)
    seconds = f"  {row['seconds']:.1f}s" if isinstance(row.get("seconds"), (int, float)) else ""
    of = f"/{epochs}" if epochs is not None else ""
    return f"epoch {row['epoch']}{of}  {metrics}{seconds}"


def model_lines(model: dict) -> list[str]:
    metrics = model.get("metrics") or {}
    lines = [f"model {model['id']} (dataset {model['dataset']}, job {model.get('job_id')})",
             f"  classes  {model.get('classes')}",
             "  metrics  " + "  ".join(f"{key} {_number(metrics[key])}" for key in
                                       ("precision", "recall", "mAP50", "mAP50-95") if key in metrics)]
    lines += [f"  {kind:<8} {uri}" for kind, uri in (model.get("weights") or {}).items() if uri]
    return lines


def count(n: int, noun: str) -> str:
    """'1 issue', '2 issues', '1 box', '3 boxes'."""
    return f"{n:,} {noun if n == 1 else noun + ('es' if noun.endswith('x') else 's')}"


def table(rows: list[dict], columns: tuple[str, ...]) -> list[str]:
    """Rows as aligned columns with a header; missing values as '-'."""
    cells = [[_number(row.get(column)) if row.get(column) is not None else "-" for column in columns]
             for row in rows]
    widths = [max([len(column), *(len(cell[i]) for cell in cells)]) for i, column in enumerate(columns)]
    return ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in [list(columns), *cells]]


def export_counts(export: dict) -> list[str]:
    """What an export holds: boxes per class in columns per split, then all boxes and the images."""
    splits = export.get("splits") or {}
    if not splits:
        return []
    per_class = export.get("boxes_per_class") or {}
    names = list(dict.fromkeys(name for split in splits for name in per_class.get(split, {})))
    rows = [_count_row(name, {split: per_class.get(split, {}).get(name, 0) for split in splits}) for name in names]
    rows.append(_count_row("(all boxes)", {split: sum(per_class.get(split, {}).values()) for split in splits}))
    rows.append(_count_row("(images)", splits))
    return table(rows, ("class", *splits, "total"))


def _count_row(label: str, counts: dict[str, int]) -> dict:
    return {"class": label, **{split: f"{n:,}" for split, n in counts.items()}, "total": f"{sum(counts.values()):,}"}


def box_lines(prediction: dict) -> list[str]:
    if prediction.get("error"):
        return [f"{prediction['source']}: {prediction['error']['code']}: {prediction['error']['message']}"]
    lines = [f"{prediction['source']} ({prediction['width']}x{prediction['height']}): "
             f"{len(prediction['boxes'])} boxes"]
    lines += [f"  {box['class_name']:<16} {box['confidence']:.2f}  "
              f"x1 {box['x1']:.0f} y1 {box['y1']:.0f} x2 {box['x2']:.0f} y2 {box['y2']:.0f}"
              for box in prediction["boxes"]]
    return lines


def how_it_ended(view: dict) -> str:
    """'cancelled by alice', or 'failed: <what went wrong>'."""
    if view["status"] == "cancelled":
        return f"cancelled by {view.get('cancelled_by') or 'someone'}"
    return f"{view['status']}: {view.get('error')}"


def progress_text(progress: dict) -> str:
    """'3/10 epochs', or '120 files' while the total is not known."""
    total = f"/{progress['total']:,}" if progress.get("total") is not None else ""
    return f"{progress['done']:,}{total} {progress['unit']}"


def age(seconds: float | None) -> str:
    """'45s', '12m', '3h', '2d'."""
    if seconds is None:
        return "-"
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "m")):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{max(0, int(seconds))}s"


def job_row(job: dict, now: float) -> dict:
    """A job of any kind as a row of `yolodrop jobs`."""
    created = job.get("created_at")
    return {"ref": job["ref"], "dataset": job.get("dataset"), "status": job["status"], "phase": job.get("phase"),
            "progress": progress_text(job["progress"]), "age": age(now - created if created else None)}


def job_lines(job: dict) -> list[str]:
    """A job of any kind: what it is, where it is, and what went wrong."""
    phase = f" ({job['phase']})" if job.get("phase") else ""
    lines = [f"{job['ref']} ({job.get('dataset')}): {job['status']}{phase}, {progress_text(job['progress'])}"]
    return lines + ([f"  error: {job['error']}"] if job.get("error") else [])
