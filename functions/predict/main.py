"""Cloud Function: predict with a registered model's ONNX (POST /models/{model_id}/predict)."""
import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from common.services import predict_request


@functions_framework.http
def predict(request):
    return predict_request.handle(request)


@functions_framework.errorhandler(HTTPException)
def framework_error(error):
    """The framework answers some paths itself: JSON, like every answer."""
    return predict_request.framework_error(error, flask.request)
