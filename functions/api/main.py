"""Cloud Function: the HTTP API over the dataset index."""
import functions_framework

from common.api.app import app


@functions_framework.http
def api_handler(request):
    return app.handle(request)
