"""The page in headless Chromium on the local stack: a gallery of 100 thumbnails, from navigation to every
thumbnail painted, and what the page transfers on first load.

Starts its own stack on free ports, drops N generated 640x480 images with labels (ingest writes their 256 px
thumbnails), signs a person up in the Auth emulator and makes them a viewer, then in a fresh Chromium profile:

- first load: the sign-in screen from an empty cache; the bytes transferred (HTML, CSS, JS);
- gallery, cold: a full navigation to the gallery (page size 100) with an empty HTTP cache, until all 100
  thumbnails have loaded, measured in the page from the navigation's start (performance.now());
- gallery, warm: the same navigation again, --repeat times (static files revalidated with 304s, thumbnails
  from the HTTP cache: Cache-Control immutable), median and worst.
"""
from __future__ import annotations

import argparse
import statistics
import uuid

from infra.local import stack as local_stack
from infra.local.browser import chromium, screenshot, sign_in
from infra.local.client import ApiClient, sign_up, upload_all, wait_for
from infra.local.sample import generated_dataset
from common.domain import layout

PASSWORD = "secret-123"
PAINTED = "document.querySelectorAll('[data-testid=gallery-item][data-painted=true]').length"
TRANSFERRED = """() => {
  const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
  const kind = (e) => e.name.includes('/thumbnails/') ? 'thumbnails' : e.initiatorType === 'fetch' ? 'api' :
                      e.name.includes('identitytoolkit') || e.name.includes('securetoken') ? 'sign-in' : 'page files';
  const sums = {};
  for (const e of entries) { const k = kind(e); sums[k] = sums[k] || {count: 0, bytes: 0, decoded: 0};
    sums[k].count++; sums[k].bytes += e.transferSize; sums[k].decoded += e.decodedBodySize; }
  return sums;
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=120, help="images in the dataset (the gallery shows 100)")
    parser.add_argument("--repeat", type=int, default=5, help="warm gallery loads")
    args = parser.parse_args()
    with local_stack.temporary_stack("yolodrop-bench-page-") as stack:
        run(stack, ApiClient(stack.env()["API_URL"], stack.token), args)


def run(stack, api: ApiClient, args) -> None:
    from common.cloud import storage
    dataset, email = f"bench-{uuid.uuid4().hex[:6]}", f"bench-{uuid.uuid4().hex[:6]}@example.com"
    print(f"dropping {args.n} generated 640x480 images with labels ...", flush=True)
    files = generated_dataset(args.n, 0, size=(640, 480))
    upload_all(storage.bucket(), {layout.dataset_object(dataset, k): v for k, v in files.items()})
    wait_for(lambda: api.get_or_none(f"/datasets/{dataset}"),
             lambda d: d is not None and d["classes_known"] and d["stats"]["labeled"] == args.n,
             600, "the dataset indexed", interval=0.5)
    uid, _ = sign_up(stack.env()["FIREBASE_AUTH_EMULATOR_HOST"], email, PASSWORD)
    api.session.put(f"{api.url}/datasets/{dataset}/members/{uid}", json={"role": "viewer"},
                    timeout=30).raise_for_status()
    url = stack.env()["API_URL"]
    with chromium() as browser:
        page = browser.new_page()
        page.goto(f"{url}/#/signin")
        page.get_by_label("E-mail").wait_for()
        report("first load (sign-in screen, empty cache)", page.evaluate(TRANSFERRED))
        sign_in(page, url, email, PASSWORD)
        cold = gallery_load(page, url, dataset)
        report(f"gallery, cold: {cold['ms']:.0f} ms to 100 thumbnails painted (the list drawn at "
               f"{cold['listed_ms']:.0f} ms)", cold["transfer"])
        screenshot(page, "bench-gallery")
        warm = [gallery_load(page, url, dataset) for _ in range(args.repeat)]
        painted, listed = [w["ms"] for w in warm], [w["listed_ms"] for w in warm]
        report(f"gallery, warm ({args.repeat} loads): median {statistics.median(painted):.0f} ms to 100 painted, "
               f"worst {max(painted):.0f} ms (the list drawn at median {statistics.median(listed):.0f} ms); last load",
               warm[-1]["transfer"])


def gallery_load(page, url: str, dataset: str) -> dict:
    """A full navigation to the gallery; ms from its start until every thumbnail on it has loaded."""
    page.goto("about:blank")
    page.goto(f"{url}/#/d/{dataset}/gallery")
    page.wait_for_function(f"{PAINTED} === 100", timeout=120_000, polling="raf")
    listed = page.evaluate("performance.getEntriesByName('gallery-listed').at(-1).startTime")
    return {"ms": page.evaluate("performance.now()"), "listed_ms": listed, "transfer": page.evaluate(TRANSFERRED)}


def report(title: str, transfer: dict) -> None:
    total = sum(v["bytes"] for v in transfer.values())
    parts = ", ".join(f"{k} {v['count']} requests {v['bytes'] / 1024:.1f} KiB" for k, v in sorted(transfer.items()))
    print(f"{title}: transferred {total / 1024:.1f} KiB ({parts})", flush=True)


if __name__ == "__main__":
    main()
