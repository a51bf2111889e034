"""The OpenAPI 3.1 document, written from the routes' own declarations."""
from __future__ import annotations

from collections.abc import Sequence

from common.api.errors import ERROR_SCHEMA
from common.api.params import Param
from common.api.routes import Route
from common.api.schema import ANY
from common.domain.bodies import Body
from common.platform import config

SCHEMA_REF = "#/components/schemas/{model}"
ERROR_REF = {"$ref": SCHEMA_REF.format(model="Error")}
ERRORS = {400: "a bad parameter or body, named in param", 401: "no bearer token, or a wrong one",
          403: "you may see this, but it needs a higher role (named in the message)",
          404: "no such resource, or none you may see",
          429: "too many of these requests: try again after Retry-After seconds",
          500: "an unexpected failure; the log has it under request_id",
          503: "a cloud service did not answer in time; try again"}


PREDICTION_TAG = "prediction"  # operations the prediction function serves (at PREDICT_URL), not the API


def route(api_routes: list[Route], prediction_routes: list[Route]) -> Route:
    """GET /openapi.json, describing `api_routes`, itself, and the prediction function's routes."""
    def openapi_document(ctx, args) -> dict:
        return document([*api_routes, own], prediction_routes)
    own = Route("GET", "/openapi.json", openapi_document, "This document", ANY, public=True)
    return own


def document(routes: list[Route], prediction_routes: Sequence[Route] = ()) -> dict:
    paths: dict[str, dict] = {}
    schemas: dict[str, dict] = {"Error": ERROR_SCHEMA}
    for declared in routes:
        paths.setdefault(declared.path, {})[declared.method.lower()] = _operation(declared, schemas)
    for declared in prediction_routes:
        paths.setdefault(declared.path, {})[declared.method.lower()] = _served_by_prediction(
            _operation(declared, schemas))
    return {
        "openapi": "3.1.0",
        "info": {"title": "yolodrop", "version": "1",
                 "description": "YOLO datasets indexed from a bucket, and training jobs. Every answer is JSON."},
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {
                           "type": "http", "scheme": "bearer",
                           "description": "Authorization: Bearer <Firebase ID token, API key yd_..., "
                                          "or the administrator's API_TOKEN>"}}},
        "security": [{"bearer": []}],
    }


def _operation(declared: Route, schemas: dict[str, dict]) -> dict:
    operation = {"operationId": declared.operation_id, "summary": declared.summary,
                 "parameters": [_parameter(p) for p in declared.params],
                 "responses": _responses(declared)}
    if declared.body is not None:
        operation["requestBody"] = {"required": not declared.body_optional,
                                    "content": {"application/json": {"schema": _body_schema(declared.body, schemas)}}}
    if declared.raw_body is not None:
        operation["requestBody"] = {"required": True, "content": declared.raw_body.content}
    if declared.public:
        operation["security"] = []
    if declared.role:
        operation["x-required-role"] = declared.role
    return operation


def _body_schema(model: type[Body], schemas: dict[str, dict]) -> dict:
    """The JSON Schema of a body's model, the models it holds moved into components/schemas (one name, one
    schema: two models of one name would be a bug here, not two meanings in the document)."""
    schema = model.model_json_schema(ref_template=SCHEMA_REF)
    for name, held in schema.pop("$defs", {}).items():
        if schemas.setdefault(name, held) != held:
            raise ValueError(f"two request body models are named {name}: rename one")
    return schema


def _served_by_prediction(operation: dict) -> dict:
    url = config.predict_url()
    return {**operation, "tags": [PREDICTION_TAG],
            **({"servers": [{"url": url, "description": "the prediction function"}]} if url else {})}


def _parameter(param: Param) -> dict:
    return {"name": param.name, "in": param.location, "required": param.location == "path",
            "description": param.description, "schema": param.schema}


def _responses(declared: Route) -> dict:
    answers: dict[int, tuple[str, dict | None]] = {declared.status: ("success", declared.response)}
    for status in _error_statuses(declared):
        answers[status] = (ERRORS[status], ERROR_REF)
    if any(param.name == "If-None-Match" for param in declared.params):
        answers[304] = ("not modified: an ETag the caller holds is current (no body)", None)
    answers.update(declared.responses)
    return {str(status): _response(description, schema, declared.media_type if status == declared.status
                                   else "application/json")
            for status, (description, schema) in sorted(answers.items())}


def _response(description: str, schema: dict | None, media_type: str) -> dict:
    """One answer; one without a schema has no body (a 304)."""
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {media_type: {"schema": schema}}}


def _error_statuses(declared: Route) -> list[int]:
    statuses = [500, 503]
    if not declared.public:
        statuses.append(401)
    if declared.body is not None or declared.raw_body is not None or \
            any(p.location in ("query", "header") for p in declared.params):
        statuses.append(400)
    if any(p.location == "path" for p in declared.params):
        statuses.append(404)
    if not declared.public:
        statuses.append(403)  # a role too low, or the administrator token where a person is needed
    if declared.rate_limited:
        statuses.append(429)
    return statuses
