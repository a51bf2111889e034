"""The data bucket as listed: a dataset's objects (names, generations, sizes) page by page, the datasets it holds,
and one object's live generation. Only the fields a reindex needs are asked for."""
from __future__ import annotations

from collections.abc import Iterator

from common.cloud import storage
from common.domain import layout
from common.domain.reindex import Listed, session_metadata

PAGE_SIZE = 1000  # Cloud Storage's largest page
LISTED_FIELDS = "items(name,generation,size,metadata,updated),nextPageToken"


def objects(prefix: str) -> Iterator[Listed]:
    """Every live object under `prefix`, in name order, listed a page at a time."""
    for blob in storage.client().list_blobs(storage.bucket(), prefix=prefix, page_size=PAGE_SIZE,
                                            fields=LISTED_FIELDS):
        yield _listed(blob)


def dataset_objects(dataset: str) -> Iterator[Listed]:
    return objects(layout.dataset_prefix(dataset))


def datasets(after: str | None = None, limit: int = 100) -> list[str]:
    """The dataset folders the bucket holds (valid names only), in name order, at most `limit` after `after`."""
    start = layout.DATASETS_PREFIX + after if after else None  # `after` itself is listed again: left out below
    pages = storage.client().list_blobs(storage.bucket(), prefix=layout.DATASETS_PREFIX, delimiter="/",
                                        start_offset=start, page_size=PAGE_SIZE, fields="prefixes,nextPageToken")
    found: list[str] = []
    for page in pages.pages:
        found += [name for prefix in sorted(page.prefixes) if (name := prefix[len(layout.DATASETS_PREFIX):-1])
                  and layout.is_valid_dataset_name(name) and (after is None or name > after)]
        if len(found) >= limit:
            break
    return sorted(found)[:limit]


def live(name: str) -> Listed | None:
    """The object's live generation, or None when it is gone."""
    blob = storage.bucket().get_blob(name)
    return _listed(blob) if blob is not None else None


def _listed(blob) -> Listed:
    return Listed(blob.name, int(blob.generation), int(blob.size) if blob.size is not None else None,
                  session_metadata(blob.metadata), blob.updated.timestamp() if blob.updated else None)
