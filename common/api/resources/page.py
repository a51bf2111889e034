"""The page: its static files (plain HTML, CSS and ES modules from common/api/page/, no build step) and the
small public configuration it starts from. Served by the API itself, so the page and the API share one origin:
no CORS, one deployment, and the page calls exactly the routes programs call, with the same checks."""
from __future__ import annotations

import gzip
import hashlib
import mimetypes
from pathlib import Path
from urllib.parse import urlsplit

from flask import Response
from werkzeug.http import parse_etags, quote_etag

from common.api import params
from common.api.context import RequestContext
from common.api.errors import ApiError
from common.api.routes import Route
from common.api.schema import BOOLEAN, STRING, nullable, obj
from common.domain.storable import quoted
from common.platform import config

PAGE_DIR = Path(__file__).resolve().parents[1] / "page"
TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}
FILE = params.path("file", "a file of the page (app.js, style.css, ...)")
ACCEPT_ENCODING = params.header("Accept-Encoding", "gzip: the file comes compressed")
IF_NONE_MATCH = params.header("If-None-Match", "the ETags the caller holds (a list, weak or strong, or *): 304 when "
                                                "one is still current")


def still_current(etag: str, if_none_match: str | None) -> bool:
    """Whether the caller holds this (unquoted) ETag: werkzeug parses the If-None-Match list (`W/"a", "b"`,
    `*`) and compares weakly, as RFC 9110 asks of If-None-Match."""
    return parse_etags(if_none_match).contains_weak(etag)


class StaticFile:
    """One file of the page, read once: its bytes, gzipped bytes and ETag."""

    def __init__(self, path: Path):
        self.body = path.read_bytes()
        self.gzipped = gzip.compress(self.body, 9, mtime=0)
        self.etag = hashlib.sha256(self.body).hexdigest()[:32]
        self.media_type = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"

    def answer(self, accept_encoding: str | None, if_none_match: str | None) -> Response:
        headers = {"ETag": quote_etag(self.etag), "Cache-Control": "no-cache", "Vary": "Accept-Encoding",
                   "X-Content-Type-Options": "nosniff"}
        if self.media_type == "text/html":
            headers["Content-Security-Policy"] = content_security_policy()
        if still_current(self.etag, if_none_match):
            return Response(status=304, headers=headers)
        if "gzip" in (accept_encoding or ""):
            return Response(self.gzipped, mimetype=self.media_type, headers={**headers, "Content-Encoding": "gzip"})
        return Response(self.body, mimetype=self.media_type, headers=headers)


def content_security_policy() -> str:
    """What the page may load and call: its own files, the sign-in service and the prediction function it
    fetches (page_config's addresses), images it made itself (blob:, data:); inline style attributes (the
    page sizes bars and frames with them), never inline script; nothing may frame it (clickjacking of its
    "make key" and "members" buttons)."""
    settings = page_config(None, {})
    calls = [settings["auth"]["sign_in"], settings["auth"]["refresh"], settings["predict_url"]]
    connect = " ".join(["'self'", *sorted({_origin(url) for url in calls if url})])
    return "; ".join([
        "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'",
        "img-src 'self' blob: data:", f"connect-src {connect}", "object-src 'none'",
        "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'"])


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


FILES = {path.name: StaticFile(path) for path in sorted(PAGE_DIR.iterdir()) if path.is_file()}


def index(ctx: RequestContext, args: dict) -> Response:
    return FILES["index.html"].answer(args["Accept-Encoding"], args["If-None-Match"])


def page_file(ctx: RequestContext, args: dict) -> Response:
    found = FILES.get(args["file"])
    if found is None:
        raise ApiError(404, f"no page file {quoted(args['file'])}")
    return found.answer(args["Accept-Encoding"], args["If-None-Match"])


GOOGLE_AUTHORIZE = "https://accounts.google.com/o/oauth2/v2/auth"


def page_config(ctx: RequestContext | None, args: dict) -> dict:
    """Where the page signs people in (the Auth emulator locally, Google's Identity Toolkit in production)."""
    emulator = config.auth_emulator_host()
    base = f"http://{emulator}/" if emulator else "https://"
    toolkit = f"{base}identitytoolkit.googleapis.com/v1/accounts"
    return {"project": config.project(), "bucket": config.data_bucket(), "emulator": bool(emulator),
            "auth": {"sign_in": f"{toolkit}:signInWithPassword", "sign_in_idp": f"{toolkit}:signInWithIdp",
                     "refresh": f"{base}securetoken.googleapis.com/v1/token",
                     "api_key": config.firebase_web_api_key() or "local"},
            "google": google_sign_in(bool(emulator)),
            "predict_url": config.predict_url()}


def google_sign_in(emulator: bool) -> dict | None:
    """How the page signs people in with Google: Google's own page (OAuth's implicit flow for an ID token,
    with the OAuth client the Firebase project's Google provider accepts); the Auth emulator stands in for
    Google locally; neither without a client id in production (the page then offers e-mail only)."""
    client_id = config.google_oauth_client_id()
    if emulator:
        return {"emulator": True, "client_id": client_id, "authorize": None}
    return {"emulator": False, "client_id": client_id, "authorize": GOOGLE_AUTHORIZE} if client_id else None


CONFIG = obj(project=STRING, bucket=STRING, emulator=BOOLEAN,
             auth=obj(sign_in=STRING, sign_in_idp=STRING, refresh=STRING, api_key=STRING),
             google=nullable(obj(emulator=BOOLEAN, client_id=nullable(STRING), authorize=nullable(STRING))),
             predict_url=nullable(STRING))
FILE_BODY = {"type": "string"}
ROUTES = [
    Route("GET", "/", index, "The page (HTML)", FILE_BODY, params=(ACCEPT_ENCODING, IF_NONE_MATCH), public=True,
          media_type="text/html"),
    Route("GET", "/page/config", page_config, "Where the page signs people in and predicts", CONFIG, public=True),
    Route("GET", "/page/{file}", page_file, "A static file of the page (JavaScript, CSS)", FILE_BODY,
          params=(FILE, ACCEPT_ENCODING, IF_NONE_MATCH), public=True, media_type="*/*"),
]
