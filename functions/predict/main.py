"""Cloud Function: POST /models/{model_id}/predict with a registered model's ONNX, through the API's router."""
import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from common.api.edge import Router
from common.api.resources import predictions
from common.services import predict as _model_runtime  # noqa: F401 - loaded at start, not by the first request

PREDICTION = Router(predictions.ROUTES, "predict", cors=predictions.CORS)


@functions_framework.http
def predict(request):
    return PREDICTION.handle(request)


@functions_framework.errorhandler(HTTPException)
def framework_error(error):
    """The framework answers some paths itself: JSON, like every answer."""
    return PREDICTION.framework_error(error, flask.request)
