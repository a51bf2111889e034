"""The JSON body of POST /models/{model_id}/predict: images named by gs:// URI, and the parameters the query
string takes. Apart from common.domain.request_bodies (whose models need the dataset rules) so that the
prediction function loads no more than this; the route reads it itself, once the model is authorized."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from common.domain.bodies import Body

MAX_BATCH = 32  # images one request may bring

# A parameter as a number, or as text the way a query string gives it: the route's parameter declaration
# reads either (common.api.resources.predictions.PARAMETERS), so the body means what the query means. An
# integer stays one (max_det: 3, never 3.0).
Number = int | float | str


class PredictImages(Body):
    """Images of the data bucket's datasets by gs:// URI; a parameter given here wins over the query's."""
    images: Annotated[list[str], Field(min_length=1, max_length=MAX_BATCH)] = Field(
        description="gs://<bucket>/datasets/<dataset>/... of datasets the caller may see")
    conf: Number | None = None
    iou: Number | None = None
    max_det: Number | None = None
    classes: str | int | Annotated[list[str | int], Field(min_length=1)] | None = Field(
        None, description="class names or ids")
