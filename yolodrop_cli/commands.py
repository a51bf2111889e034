"""The `yolodrop` commands. Every command takes --json (the API's answer, for
scripts); exit codes: 0 done, 1 failed (the API refused, a job failed, a wait
timed out), 2 usage."""
from __future__ import annotations

import functools
import json
import signal
import time
import uuid
from pathlib import Path

import click
from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                           TimeElapsedColumn)

from common.domain import job_view
from common.domain.exports import data_yaml
from yolodrop_cli import files, follow, settings, show
from yolodrop_cli import push as pushing
from yolodrop_cli.api import Api, ApiFailure, Timeout

PREDICT_BATCH = 32  # images per prediction request (the function's limit)


class Cli(click.Group):
    """API failures and timeouts become one line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ApiFailure as failure:
            fail(failure.line())
        except Timeout as timeout:
            fail(f"{timeout}: try again with a longer --timeout")


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    raise click.exceptions.Exit(1)


@click.group(cls=Cli)
@click.option("--api-url", help="the API (else YOLODROP_API_URL, .local/stack.env, `yolodrop login`)")
@click.option("--api-key", help="an API key (else YOLODROP_API_KEY, .local/stack.env, `yolodrop login`)")
@click.option("--predict-url", help="the prediction function (else YOLODROP_PREDICT_URL, ...; default: the API)")
@click.pass_context
def cli(ctx: click.Context, api_url: str | None, api_key: str | None, predict_url: str | None) -> None:
    """yolodrop: push YOLO datasets, see their index, train, predict, export."""
    ctx.obj = {"options": (api_url, api_key, predict_url)}


def api_of(ctx: click.Context) -> Api:
    found = settings.resolve(*ctx.find_root().obj["options"])
    return Api(found.api_url, found.api_key, found.predict_url)


def command(group=cli, name: str | None = None):
    """A command with --json, given the API client and whether JSON was asked for."""
    def decorate(function):
        @group.command(name=name or function.__name__.replace("_", "-"), help=function.__doc__)
        @click.option("--json", "as_json", is_flag=True, help="print the API's answer as JSON")
        @click.pass_context
        @functools.wraps(function)
        def wrapper(ctx: click.Context, as_json: bool, **kwargs):
            return function(api_of(ctx), Output(as_json), **kwargs)
        return wrapper
    return decorate


class Output:
    def __init__(self, as_json: bool):
        self.json = as_json
        self.console = Console(stderr=True)  # progress on stderr: stdout stays the answer

    def emit(self, data, lines) -> None:
        """JSON for scripts, else the lines (a list, or a function of the data making one)."""
        if self.json:
            click.echo(json.dumps(data, indent=2, default=str))
        else:
            for line in (lines(data) if callable(lines) else lines):
                click.echo(line)

    def progress(self, *columns) -> Progress:
        return Progress(TextColumn("{task.description}"), BarColumn(), *columns, TimeElapsedColumn(),
                        console=self.console, disable=self.json, transient=False)


@cli.command()
@click.option("--api-url", required=True, help="the API's URL")
@click.option("--api-key", prompt="API key (make one with POST /api-keys)", hide_input=True)
@click.option("--predict-url", help="the prediction function's URL, when it is not the API's")
def login(api_url: str, api_key: str, predict_url: str | None) -> None:
    """Check an API key and store it (with the URLs) in your config folder, readable by you only."""
    try:
        Api(api_url, api_key).get("/datasets", page_size=1)
    except ApiFailure as failure:
        fail(f"the key was not stored: {failure.line()}")
    click.echo(f"logged in to {api_url}; stored in {settings.store(api_url, api_key, predict_url)} (mode 0600)")


@command()
def datasets(api: Api, out: Output) -> None:
    """The datasets you can see, with their summary."""
    rows = list(api.pages("/datasets", "datasets", page_size=100))
    out.emit(rows, lambda _: show.table([{"dataset": r["id"], "classes": len(r.get("classes") or []), **r["stats"]}
                                         for r in rows], ("dataset", "classes", *show.STAT_KEYS)))


@command()
@click.argument("dataset")
def status(api: Api, out: Output, dataset: str) -> None:
    """A dataset's statistics, with a bar per class."""
    view = api.get(f"/datasets/{dataset}")
    out.emit(view, lambda v: [*show.summary(v), *show.class_bars(v["stats"].get("boxes_per_class") or {})])


@command()
@click.argument("dataset")
@click.option("--code", help="only issues with this code (e.g. label_out_of_range)")
@click.option("--limit", type=click.IntRange(1), help="at most this many")
def issues(api: Api, out: Output, dataset: str, code: str | None, limit: int | None) -> None:
    """A dataset's issues: code, file:line and what is wrong."""
    found = [issue for issue in api.pages(f"/datasets/{dataset}/issues", "issues", page_size=1000)
             if code is None or issue["code"] == code][:limit]
    out.emit(found, lambda rows: [show.issue_line(issue) for issue in rows] or ["no issues"])


@command()
@click.argument("dataset")
@click.option("--split", type=click.Choice(["train", "val", "test", "none"]))
@click.option("--class", "class_", help="a class name or id")
@click.option("--status", type=click.Choice(["labeled", "background", "unlabeled", "label_only"]))
@click.option("--has-issues/--no-issues", default=None, help="only images with (or without) issues")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
def images(api: Api, out: Output, dataset: str, split, class_, status, has_issues, limit: int) -> None:
    """A dataset's images, filtered."""
    flag = None if has_issues is None else str(has_issues).lower()
    rows = list(api.pages(f"/datasets/{dataset}/images", "images", limit=limit, page_size=min(limit, 1000),
                          split=split, status=status, has_issues=flag, **{"class": class_}))
    out.emit(rows, lambda _: show.table([{**r, "boxes": len(r.get("labels") or []), "issues": len(r.get("issues")
                                                                                                   or [])}
                                         for r in rows], ("path", "split", "status", "width", "height", "boxes",
                                                          "issues")))


@command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.argument("dataset")
@click.option("--no-wait", is_flag=True, help="do not wait for the index to catch up")
@click.option("--workers", type=click.IntRange(1, 64), default=16, show_default=True, help="parallel uploads")
@click.option("--timeout", type=float, default=900, show_default=True, help="seconds to wait for the index")
def push(api: Api, out: Output, source: Path, dataset: str, no_wait: bool, workers: int, timeout: float) -> None:
    """Upload a folder or a zip into DATASET: Ultralytics, Roboflow, Label Studio, FiftyOne, CVAT, Darknet, COCO or
    Pascal VOC, recognised from its files. Files already there with the same content are skipped; data.yaml goes
    last. Then wait for the index and show it."""
    try:
        plan = files.plan(source, lambda: _dataset_yaml(api, dataset))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="SOURCE") from None
    _refuse_unread_images(source, plan)
    if not plan.items:
        raise click.BadParameter(f"{source} holds no image, label or data.yaml", param_hint="SOURCE")
    pushing.ensure_dataset(api, dataset)
    with out.progress(_FilesOrBytes()) as bars:
        pushed = pushing.push(api, dataset, plan.items, _PushBars(bars, plan.items), workers)
    report = {"dataset": dataset, "layout": plan.layout, "layout_issues": plan.issues,
              "uploaded": len(pushed.uploaded),
              "unchanged": len(pushed.unchanged), "bytes_sent": pushed.bytes_sent, "not_pushed": plan.skipped}
    if not out.json:
        click.echo(f"layout: {plan.layout}")
        click.echo("".join(f"{issue['code']}: {issue['message']}\n" for issue in plan.issues), nl=False)
        click.echo(f"pushed {show.count(len(pushed.uploaded), 'file')} ({pushed.bytes_sent:,} bytes); "
                   f"{len(pushed.unchanged)} already there, unchanged")
        click.echo("".join(f"not pushed (no image, label or data.yaml): {p}\n" for p in plan.skipped), nl=False)
    if no_wait:
        return out.emit(report, [])
    view = _wait(api, out, dataset, pushed, plan, timeout)
    issues_found = list(api.pages(f"/datasets/{dataset}/issues", "issues", page_size=1000))
    out.emit({**report, "dataset_view": view, "issues": issues_found},
             [*show.summary(view), "issues:" if issues_found else "no issues",
              *(show.issue_line(issue) for issue in issues_found)])


def _dataset_yaml(api: Api, dataset: str) -> bytes | None:
    """The dataset's class names as data.yaml, when it exists and names them (COCO and VOC classes are matched
    onto them by name)."""
    try:
        view = api.get(f"/datasets/{dataset}")
    except ApiFailure as failure:
        if failure.status == 404:
            return None
        raise
    return data_yaml(view["classes"]) if view.get("classes_known", True) and view.get("classes") else None


def _refuse_unread_images(source: Path, plan: files.Plan) -> None:
    """A folder full of images of which none would be pushed: nothing is sent, exit 1, and say why."""
    if plan.local_images and not plan.images:
        raise click.ClickException(
            f"{source} holds {plan.local_images} images but none where a layout yolodrop reads puts them "
            f"(images under images/ or <split>/images/, CVAT's obj_<split>_data/, Darknet's obj/, VOC's "
            "JPEGImages/ with Annotations/, or named by COCO JSON); nothing was pushed. "
            f"Layouts read: {'; '.join(files.LAYOUTS_READ)}. Move the images into one of these, or zip the export.")


class _FilesOrBytes(ProgressColumn):
    """'12/31' on the files bar, '1.2/4.0 MB' on the bytes bar."""
    def __init__(self):
        super().__init__()
        self.counts, self.sizes = MofNCompleteColumn(), DownloadColumn()

    def render(self, task):
        return (self.sizes if task.description == "bytes" else self.counts).render(task)


class _PushBars(pushing.Progress):
    def __init__(self, bars: Progress, items: list[files.Item]):
        self.bars = bars
        self.files = bars.add_task("files", total=len(items))
        self.bytes = bars.add_task("bytes", total=sum(item.size for item in items))

    def sent(self, item: files.Item, size: int) -> None:
        self.bars.advance(self.bytes, size)

    def finished(self, item: files.Item) -> None:
        self.bars.advance(self.files, 1)


def _wait(api: Api, out: Output, dataset: str, pushed: pushing.Pushed, plan: files.Plan, timeout: float) -> dict:
    archive_images = sum(files.zip_image_count(item.source) for item in plan.items
                         if item.archive and item.source is not None)  # an archive is a local file
    with out.progress(MofNCompleteColumn()) as bars:
        task = bars.add_task("indexed", total=len(pushed.generations) or 1)
        return pushing.wait_for_index(api, dataset, pushed, archive_images, timeout,
                                      lambda seen, total: bars.update(task, completed=seen if total else 1))


def parse_args(pairs: tuple[str, ...]) -> dict:
    """--arg k=v pairs as training arguments: JSON values (0.01, true, [0]) as such, anything else a string."""
    parsed = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="--arg")
        try:
            parsed[key] = json.loads(value)
        except ValueError:
            parsed[key] = value
    return parsed


def parse_gpus(text: str | None) -> dict:
    """--gpus TYPE:COUNT (nvidia-l4:4) as the request's accelerator; the training function checks it against the
    operator's limits."""
    if text is None:
        return {}
    kind, colon, count = text.partition(":")
    if not colon or not kind or not count.isdigit():
        raise click.BadParameter(f"{text!r} is not TYPE:COUNT, e.g. nvidia-l4:4", param_hint="--gpus")
    return {"accelerator": {"type": kind, "count": int(count)}}


@command()
@click.argument("dataset")
@click.option("--model", required=True, help="a detection YAML (yolov8n.yaml), official weights (yolo11n.pt, "
                                            "pinned by the operator) or a registered model id you may view; "
                                            "never a path")
@click.option("--epochs", type=click.IntRange(1), default=50, show_default=True)
@click.option("--version", help="train on this frozen version of the dataset")
@click.option("--imgsz", type=click.IntRange(32))
@click.option("--batch", type=int)
@click.option("--arg", "args", multiple=True, help="a further Ultralytics argument, key=value (repeatable)")
@click.option("--gpus", help="several GPUs, TYPE:COUNT (nvidia-l4:4), where the operator allows them; "
                             "default: one")
@click.option("--request-id", help="your same id is the same job (default: a new id, kept across the CLI's retries)")
@click.option("--follow", is_flag=True, help="show the epochs as they end; Ctrl-C asks whether to cancel")
def train(api: Api, out: Output, dataset: str, model: str, epochs: int, version, imgsz, batch, args, gpus,
          request_id, follow: bool) -> None:
    """Ask for training; with --follow, show each epoch and end with the registered model."""
    request = {"dataset": dataset, "model": model, "epochs": epochs, **parse_args(args), **parse_gpus(gpus),
               "request_id": request_id or uuid.uuid4().hex,
               **{k: v for k, v in (("version", version), ("imgsz", imgsz), ("batch", batch)) if v is not None}}
    answer = api.post("/training", request)
    if not follow:
        return out.emit(answer, [f"job {answer['job_id']} queued; follow it with "
                                 f"`yolodrop job {answer['job_id']} --follow`"])
    if not out.json:
        click.echo(f"job {answer['job_id']}: {model} on {dataset}, {epochs} epochs")
    _follow(api, out, answer["job_id"])


@command()
@click.argument("ref")
@click.option("--follow", is_flag=True, help="show its progress to the end; Ctrl-C asks whether to cancel")
def job(api: Api, out: Output, ref: str, follow: bool) -> None:
    """One job of any kind by its ref, kind/id (`yolodrop jobs` lists them): status, phase, progress, error.
    A bare id is a training job's, shown with its epochs and model."""
    if follow:
        return _follow(api, out, ref)
    if "/" in ref:
        return out.emit(api.get(f"/jobs/{ref}"), show.job_lines)
    view = api.get(f"/training/{ref}")
    out.emit(view, lambda j: [f"job {j['id']} ({j['dataset']}): {j['status']}, epoch {j.get('epoch') or 0}/"
                              f"{j.get('epochs')}" + (f", model {j['model_id']}" if j.get("model_id") else ""),
                              *([f"  error: {j['error']}"] if j.get("error") else []),
                              *(show.epoch_line(row, j.get("epochs")) for row in j.get("history") or [])])


def _follow(api: Api, out: Output, ref: str) -> None:
    """Follow any job to its end: exit 0 once completed (a training job: with its model), else 1 with its error."""
    with out.progress(MofNCompleteColumn()) as bars:
        watcher = follow.Follower(api, ref, follow.Display(bars, out.json, click.echo))
        final = watcher.run(confirm_cancel=lambda: _ask_cancel(api, watcher, bars))
    if final["status"] != "completed":
        fail(f"job {final['ref']} {final['status']}" + (f": {final['error']}" if final.get("error") else ""))
    if final["kind"] != follow.TRAINING:
        return out.emit({"event": "job", **final}, show.job_lines(final))
    model = api.get(f"/models/{api.get(final['links']['self'])['model_id']}")
    out.emit({"event": "model", **model}, show.model_lines(model))


def _ask_cancel(api: Api, watcher: follow.Follower, bars: Progress) -> bool:
    """After Ctrl-C: cancel the job (True: keep following to its end) or leave it running (False)."""
    ref, again = watcher.ref, f"follow it again with `yolodrop job {watcher.ref} --follow`"
    if not (watcher.last or {}).get("cancellable"):
        click.echo(f"\n{ref} cannot be cancelled now; it goes on: {again}", err=True)
        return False
    bars.stop()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        cancel = click.confirm(f"\ncancel job {ref}? (no: it keeps running; {again})", default=False, err=True)
    except click.Abort:
        cancel = False
    finally:
        signal.signal(signal.SIGINT, previous)
    if cancel:
        api.post(follow.cancel_path(ref))
        click.echo("cancel requested" + (": the trainer stops after the current epoch" if watcher.training else ""),
                   err=True)
        bars.start()
    return cancel


@command()
@click.option("--dataset", help="only this dataset's jobs")
@click.option("--kind", type=click.Choice(job_view.KINDS), help="only jobs of this kind")
@click.option("--active", is_flag=True, help="only queued or running jobs")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
def jobs(api: Api, out: Output, dataset: str | None, kind: str | None, active: bool, limit: int) -> None:
    """Jobs of every kind (training, imports, exports, versions, dataset jobs), newest first; follow one with
    `yolodrop job REF --follow`."""
    rows = api.get("/jobs", dataset=dataset, kind=kind, active="true" if active else None, limit=limit)["items"]
    now = time.time()
    out.emit(rows, lambda _: show.table([show.job_row(row, now) for row in rows],
                                        ("ref", "dataset", "status", "phase", "progress", "age")))


@command()
@click.argument("dataset", required=False)
@click.option("--all", "every", is_flag=True, help="every dataset folder of the bucket (the administrator's)")
@click.option("--after", metavar="NAME", help="with --all: only the dataset folders after NAME (name order), to go "
                                              "on where an earlier --all stopped")
@click.option("--follow/--no-follow", default=True, show_default=True, help="follow the jobs to their end")
def reindex(api: Api, out: Output, dataset: str | None, every: bool, after: str | None, follow: bool) -> None:
    """Rebuild DATASET's index from what its bucket folder holds (--all: every dataset folder's), as ingest would
    index the same files dropped: how a deployment on a bucket that already holds data starts, and how a lost
    index is rebuilt. Owners reindex their dataset; --all is the administrator's."""
    if bool(dataset) == every:
        raise click.UsageError("name one DATASET, or give --all")
    if after and not every:
        raise click.UsageError("--after goes with --all")
    request_id = uuid.uuid4().hex  # one for this command: a retried request makes no second job
    started = [api.post(f"/datasets/{dataset}/reindex", {"request_id": request_id})] if dataset else \
        _reindex_every(api, request_id, after)
    refs = [job["ref"] for job in started]
    if not follow or not refs:
        return out.emit(started, [f"{job['ref']} ({job['dataset']}): {job['status']}" for job in started]
                        or ["no dataset folder in the bucket"])
    if len(refs) == 1:
        return _follow(api, out, refs[0])
    _follow_each(api, out, refs)


def _reindex_every(api: Api, request_id: str, after: str | None) -> list[dict]:
    """A reindex of every dataset folder (after `after`), asked for a page at a time."""
    started: list[dict] = []
    while True:
        page = api.post("/reindex", {"request_id": request_id, **({"after": after} if after else {})})
        started += page["jobs"]
        after = page["next"]
        if after is None:
            return started


def _follow_each(api: Api, out: Output, refs: list[str]) -> None:
    """Follow the jobs one after the other (they run at once): exit 1 when any did not complete."""
    ended = []
    for ref in refs:
        with out.progress(MofNCompleteColumn()) as bars:
            ended.append(follow.Follower(api, ref, follow.Display(bars, out.json, click.echo)).run(
                confirm_cancel=lambda: False))
    out.emit(ended, [line for job in ended for line in show.job_lines(job)])
    failed = [job["ref"] for job in ended if job["status"] != "completed"]
    if failed:
        fail(f"{len(failed)} of {len(ended)} jobs did not complete: {', '.join(failed)}")


@command()
@click.argument("ref")
def cancel(api: Api, out: Output, ref: str) -> None:
    """Cancel a job of any kind by its ref, kind/id (a bare id is a training job's: it stops after the current
    epoch). Refused, with the reason, where the job cannot stop safely."""
    answer = api.post(follow.cancel_path(ref))
    stops = " (the trainer stops after the current epoch)" if answer["kind"] == follow.TRAINING and \
        answer["status"] != "cancelled" else ""
    out.emit(answer, [f"job {answer['ref']}: {answer['status']}, cancel requested{stops}"])


@command()
@click.option("--dataset", help="only this dataset's models")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
def models(api: Api, out: Output, dataset: str | None, limit: int) -> None:
    """Registered models, newest first."""
    rows = list(api.pages("/models", "models", limit=limit, dataset=dataset, page_size=min(limit, 100)))
    out.emit(rows, lambda _: show.table([{**r, **{k: (r.get("metrics") or {}).get(k) for k in ("mAP50", "mAP50-95")}}
                                         for r in rows], ("id", "dataset", "job_id", "epochs", "mAP50", "mAP50-95")))


@command()
@click.argument("model_id")
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--conf", type=click.FloatRange(0, 1), help="confidence threshold (0.25)")
@click.option("--iou", type=click.FloatRange(0, 1), help="NMS IoU threshold (0.7)")
@click.option("--save", type=click.Path(file_okay=False, path_type=Path), help="write the images with boxes here")
def predict(api: Api, out: Output, model_id: str, images: tuple[Path, ...], conf, iou, save: Path | None) -> None:
    """Predict with a registered model on local images; print the boxes."""
    params = {k: v for k, v in (("conf", conf), ("iou", iou)) if v is not None}
    predictions = []
    for start in range(0, len(images), PREDICT_BATCH):
        batch = images[start:start + PREDICT_BATCH]
        parts = [("file", (path.name, path.read_bytes(), pushing.content_type(path.name))) for path in batch]
        answer = api.call("POST", f"/models/{model_id}/predict", base=api.predict_url, files=parts, params=params)
        predictions += [{**p, "file": str(path)} for p, path in zip(answer["predictions"], batch)]
    if save:
        from yolodrop_cli import drawing  # Pillow, only when drawing
        for prediction in predictions:
            drawing.save_with_boxes(Path(prediction["file"]), prediction, save)
    out.emit({"model_id": model_id, "predictions": predictions},
             [line for p in predictions for line in show.box_lines(p)]
             + ([f"images with boxes in {save}"] if save else []))


@command()
@click.argument("dataset")
@click.option("--format", "export_format", type=click.Choice(["yolo", "coco", "voc"]), required=True)
@click.option("--version", help="a version id; without one, a new version is frozen")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--timeout", type=float, default=1800, show_default=True)
def export(api: Api, out: Output, dataset: str, export_format: str, version, output: Path, timeout: float) -> None:
    """Export a version of DATASET as a YOLO, COCO or Pascal VOC zip, download it, and show what it holds."""
    body = {"format": export_format, "request_id": uuid.uuid4().hex, **({"version": version} if version else {})}
    export_id = api.post(f"/datasets/{dataset}/exports", body)["export_id"]
    with out.progress(MofNCompleteColumn()) as bars:
        done = follow.export_done(api, export_id, bars, timeout)
    if done["status"] != "completed":
        fail(f"export {export_id} {show.how_it_ended(done)}")
    with out.progress(DownloadColumn()) as bars:
        size = follow.download(api.get(f"/exports/{export_id}/url"), output, bars)
    out.emit({**done, "file": str(output), "size": size},
             [f"{done['uri']} -> {output} ({size:,} bytes)", *show.export_counts(done)])


@command()
@click.argument("model_id")
@click.option("--kind", type=click.Choice(["pt", "onnx", "last", "results"]), default="pt", show_default=True,
              help="best.pt, best.onnx, last.pt or results.csv")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("."), show_default=True,
              help="a file, or a folder to save it in under the model's name for it")
def weights(api: Api, out: Output, model_id: str, kind: str, output: Path) -> None:
    """Download a registered model's weights (or its results.csv) with your API key alone."""
    link = api.get(f"/models/{model_id}/weights/{kind}/url")
    target = output / link["filename"] if output.is_dir() else output
    with out.progress(DownloadColumn()) as bars:
        size = follow.download(link, target, bars)
    out.emit({"model_id": model_id, "kind": kind, "file": str(target), "size": size},
             [f"{model_id} {kind} -> {target} ({size:,} bytes)"])


@command()
@click.argument("dataset")
def versions(api: Api, out: Output, dataset: str) -> None:
    """A dataset's frozen versions, newest first."""
    rows = list(api.pages(f"/datasets/{dataset}/versions", "versions", page_size=100))
    out.emit(rows, lambda _: show.table([{**r, "images": (r.get("stats") or {}).get("images")} for r in rows],
                                        ("id", "status", "name", "images", "error")))


@cli.group()
def version() -> None:
    """Versions of a dataset."""


@command(group=version, name="create")
@click.argument("dataset")
@click.option("--name")
@click.option("--note")
@click.option("--wait/--no-wait", default=True, show_default=True, help="wait until it is frozen")
@click.option("--timeout", type=float, default=900, show_default=True)
def version_create(api: Api, out: Output, dataset: str, name, note, wait: bool, timeout: float) -> None:
    """Freeze DATASET as a new version."""
    fields = {k: v for k, v in (("name", name), ("note", note)) if v}
    # one request id for this command, so that a retried request (a 503, a lost answer) makes no second version
    answer = api.post(f"/datasets/{dataset}/versions", {**fields, "request_id": uuid.uuid4().hex})
    view = follow.version_frozen(api, dataset, answer["version"], timeout) if wait else answer
    if view["status"] == "failed":
        fail(f"version {answer['version']} failed: {view.get('error')}")
    out.emit(view, [f"version {answer['version']} of {dataset}: {view['status']}"])


@command()
@click.argument("dataset")
@click.option("--model", "model_id", required=True, help="a registered model id (`yolodrop models`)")
@click.option("--conf", type=click.FloatRange(0, 1), default=0.25, show_default=True)
@click.option("--iou", type=click.FloatRange(0, 1), default=0.7, show_default=True)
@click.option("--images", "scope", type=click.Choice(["unlabeled", "all"]), default="unlabeled", show_default=True)
@click.option("--wait/--no-wait", default=True, show_default=True, help="follow the job to its end")
@click.option("--timeout", type=float, default=3600, show_default=True)
def autolabel(api: Api, out: Output, dataset: str, model_id: str, conf: float, iou: float, scope: str, wait: bool,
              timeout: float) -> None:
    """Propose boxes for DATASET's images with a registered model (proposals to review, not labels)."""
    # one request id for this command, so that a retried request (a 503, a lost answer) makes no second job
    job_id = api.post(f"/datasets/{dataset}/autolabel", {"model_id": model_id, "conf": conf, "iou": iou,
                                                          "images": scope, "request_id": uuid.uuid4().hex})["job_id"]
    if not wait:
        return out.emit({"job_id": job_id}, [f"auto-labelling job {job_id} started"])
    with out.progress(MofNCompleteColumn()) as bars:
        view = follow.autolabel_done(api, job_id, bars, timeout)
    if view["status"] != "completed":
        fail(f"auto-labelling job {job_id} {show.how_it_ended(view)} (the proposals made so far stay)")
    out.emit(view, [f"auto-labelling job {job_id}: {view['images_done']} images, {view.get('boxes')} boxes proposed"
                    f" (review them in the images' proposals)"])


@command(name="import")
@click.argument("dataset")
@click.argument("url")
@click.option("--format", "archive_format", type=click.Choice(["yolo", "coco"]), help="else the archive's files say")
@click.option("--tasks", type=click.IntRange(1, 64), help="parallel tasks for a zip (at most the deployment's)")
@click.option("--wait/--no-wait", default=True, show_default=True, help="follow the import to its end")
@click.option("--timeout", type=float, default=6 * 3600, show_default=True)
def import_(api: Api, out: Output, dataset: str, url: str, archive_format, tasks, wait: bool, timeout: float) -> None:
    """Import an archive (https://, http:// or gs://; .zip, .tar, .tar.gz) into DATASET (made if new) by the import
    job."""
    body = {"url": url, "request_id": uuid.uuid4().hex, **({"format": archive_format} if archive_format else {}),
            **({"tasks": tasks} if tasks else {})}
    pushing.ensure_dataset(api, dataset)
    import_id = api.post(f"/datasets/{dataset}/imports", body)["import_id"]
    if not wait:
        return out.emit({"import_id": import_id}, [f"import {import_id} started: yolodrop imports --dataset {dataset}"])
    with out.progress(MofNCompleteColumn()) as bars:
        view = follow.import_done(api, import_id, bars, timeout)
    issues = [f"  {issue['code']}: {issue['message']}" for issue in view["issues"]]
    more = view["issues_total"] - len(view["issues"])
    lines = [f"import {import_id}: {view['status']}, {view['members_done']:,} of {view['members_total'] or 0:,} files, "
             f"{view['bytes_done'] / 2**20:,.1f} MiB, {show.count(view['issues_total'], 'issue')}",
             *([f"layout: {view['layout']}"] if view.get("layout") else []), *issues,
             *([f"  … and {more} more"] if more > 0 else [])]
    if view["status"] != "completed":
        out.emit(view, lines)
        fail(f"import {import_id} {view['status']}: {view.get('error') or 'cancelled'}")
    out.emit(view, lines)


@command()
@click.option("--dataset", help="only this dataset's imports")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
def imports(api: Api, out: Output, dataset: str | None, limit: int) -> None:
    """Imports, newest first."""
    rows = list(api.pages("/imports", "imports", limit=limit, **({"dataset": dataset} if dataset else {})))
    out.emit(rows, lambda _: show.table(rows, ("id", "dataset", "status", "layout", "members_done", "members_total",
                                               "issues_total", "source")))


@command(name="files")
@click.argument("dataset")
def files_(api: Api, out: Output, dataset: str) -> None:
    """DATASET's files that are neither images nor labels (dropped archives, class-name files, other tools'
    companion files) and what each did: the layout recognised, the files unpacked, the names written."""
    rows = list(api.pages(f"/datasets/{dataset}/files", "files", page_size=1000))
    out.emit(rows, lambda _: show.table(rows, ("path", "layout", "summary", "unpacked", "issue_count")))


@command(name="import-cancel")
@click.argument("import_id")
def import_cancel(api: Api, out: Output, import_id: str) -> None:
    """Stop an import (what it unpacked stays)."""
    view = api.post(f"/imports/{import_id}/cancel")
    out.emit(view, [f"import {import_id}: {view['status']} after {view['members_done']:,} files"])


def main() -> None:
    cli(prog_name="yolodrop", auto_envvar_prefix=None)


if __name__ == "__main__":
    main()
