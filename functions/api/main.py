"""Cloud Function: the HTTP API over the dataset index."""
import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from common.api import router


@functions_framework.http
def api_handler(request):
    return router.handle(request)


@functions_framework.errorhandler(HTTPException)
def framework_error(error):
    """The framework answers some paths itself (one its routing cannot match): JSON, like every answer."""
    return router.framework_error(error, flask.request)
