"""The API's routes, served by the API function through the one router (common.api.edge), and its refusal
to serve with weak secrets. Prediction's routes (common.api.resources.predictions) are documented here
too, in /openapi.json, and served by the prediction function alone."""
from __future__ import annotations

from common.api import openapi
from common.api.edge import Router
from common.api.errors import ApiError
from common.api.resources import (api_keys, classes, datasets, health, images, issues, labels, members, models,
                                  training, uploads)
from common.api.resources import exports, versions
from common.api.resources import media, page
from common.api.resources import autolabel, files, imports
from common.api.resources import jobs
from common.api.resources import predictions
from common.api.resources import reindex
from common.api.routes import Route
from common.platform import config, log

API_ROUTES: list[Route] = [*health.ROUTES, *datasets.ROUTES, *members.ROUTES, *uploads.ROUTES, *images.ROUTES,
                           *labels.ROUTES, *classes.ROUTES, *issues.ROUTES, *training.ROUTES, *models.ROUTES,
                           *api_keys.ROUTES]
API_ROUTES += [*versions.ROUTES, *exports.ROUTES]
API_ROUTES += [*page.ROUTES, *media.ROUTES]  # the page, and images as bytes for it
API_ROUTES += autolabel.ROUTES
API_ROUTES += imports.ROUTES
API_ROUTES += files.ROUTES
API_ROUTES += jobs.ROUTES  # every kind of job, shown the same way
API_ROUTES += reindex.ROUTES  # an index rebuilt from the bucket
ROUTES: list[Route] = [*API_ROUTES, openapi.route(API_ROUTES, predictions.ROUTES)]

# Fixed documents, served whatever the secrets: the OpenAPI document and the page's files and configuration.
HOLD_NO_SECRET = {"/openapi.json", "/", "/page/config", "/page/{file}"}


def _refuse_weak_secrets(declared: Route) -> None:
    """The instance's first request finds a weak or missing API_TOKEN or PAGE_TOKEN_SECRET (checked once per
    instance while they are sound): every request but for a fixed document is then refused (the health
    check too), and the log says what to set."""
    global _SECRETS_CHECKED
    if _SECRETS_CHECKED or declared.path in HOLD_NO_SECRET:
        return
    problem = config.api_secrets_problem()
    if problem:
        log.error("the API refuses to serve: " + problem)
        raise ApiError(503, "the API is not configured safely; its operator finds why in the log", headers={})
    _SECRETS_CHECKED = True


_SECRETS_CHECKED = False
API = Router(ROUTES, "api", guard=_refuse_weak_secrets)
handle = API.handle
framework_error = API.framework_error
