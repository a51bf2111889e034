"""Cloud Function: the HTTP API over the dataset index."""
import functions_framework

from common import api


@functions_framework.http
def api_handler(request):
    return api.handle(request)
