"""The quota checks routes make for a person (the administrator has none): a 403 naming the quota, the
usage and the limit (common.domain.quotas), or a 400 for a training request over the caps."""
from __future__ import annotations

import time

from common.api.context import RequestContext
from common.api.errors import ApiError
from common.cloud import quota_store
from common.domain import quotas
from common.platform import config


def _refused(exceeded: quotas.Exceeded) -> ApiError:
    error = ApiError(403, str(exceeded))
    error.extra = {"quota": {"name": exceeded.quota, "usage": exceeded.usage, "limit": exceeded.limit}}
    return error


def check_new_dataset(ctx: RequestContext) -> None:
    if ctx.principal.is_admin:
        return
    try:
        quotas.check(quotas.DATASETS, quota_store.owned_datasets(ctx.principal.uid, ctx.deadline_seconds), 1,
                     config.quota_datasets())
    except quotas.Exceeded as exceeded:
        raise _refused(exceeded) from None


def check_training(ctx: RequestContext, body: dict) -> None:
    """The caps on the request, then the jobs at once and the trainer hours of today."""
    if ctx.principal.is_admin:
        return
    over = quotas.training_cap_refusal(body, config.training_max_epochs(), config.training_max_imgsz())
    if over:
        raise ApiError(400, over[1], over[0])
    uid, now = ctx.principal.uid, time.time()
    try:
        quotas.check(quotas.CONCURRENT_TRAINING, quota_store.unfinished_training(uid, ctx.deadline_seconds), 1,
                     config.quota_concurrent_training())
        used = quota_store.training_hours_since(uid, quotas.day_start(now), now, ctx.deadline_seconds)
        if used >= config.quota_gpu_hours_per_day():
            raise quotas.Exceeded(quotas.GPU_HOURS_PER_DAY, round(used, 2), 0, config.quota_gpu_hours_per_day())
    except quotas.Exceeded as exceeded:
        raise _refused(exceeded) from None


def charge_uploads(ctx: RequestContext, adding: int) -> None:
    """Count the declared bytes of the sessions about to be handed out against the person's stored bytes."""
    if ctx.principal.is_admin or adding <= 0:
        return
    try:
        quota_store.charge_stored_bytes(ctx.principal.uid, adding, config.quota_stored_bytes(), ctx.deadline_seconds)
    except quotas.Exceeded as exceeded:
        raise _refused(exceeded) from None
