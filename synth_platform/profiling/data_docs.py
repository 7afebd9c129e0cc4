"""Great Expectations' Data Docs made to work offline: the CSS, JavaScript and fonts their pages load come from
copies shipped in this package instead of CDNs.

GE's page templates (`great_expectations/render/view/templates/page.j2`, `js_script_imports.j2`, `top_navbar.j2`)
write absolute CDN addresses (unpkg, jsDelivr, cdnjs, code.jquery.com, the Bootstrap CDN, GE's own S3 bucket) and
GE offers no setting for them: a site's `custom_views_directory` is searched after GE's own templates, so it cannot
replace them, and the static assets GE copies beside the pages are its own only. Offline, the pages render
unstyled, and the index page, whose tables jQuery and bootstrap-table draw from data in the page, lists nothing.

`make_data_docs_offline` therefore works on what GE wrote: it copies the vendored files
(`synth_platform/data/data_docs_vendor`, see its README for packages, versions and licenses) to
`static/vendor/` in the site and rewrites each page's (and stylesheet's) CDN addresses to relative paths to them;
it also corrects GE's own paths to the site's static/ folder (the validation pages' favicon link is one "../" short).
It is idempotent, so a site GE has updated (a re-run check) can be made offline again.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)

VENDOR_DIR = Path(__file__).resolve().parents[1] / "data" / "data_docs_vendor"
SITE_VENDOR_DIR = Path("static") / "vendor"  # where the copies go, inside the site

# Each CDN address GE 1.24's templates load, and the vendored file (relative to VENDOR_DIR) served instead.
# vega@5, vega-lite@5 and vega-embed@6 are version ranges: the copies are the versions they resolved to when vendored.
VENDORED_FILES = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery-3.7.1/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.js-1.12.9/umd/popper.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap-4.3.1/css/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap-4.3.1/js/bootstrap.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table-1.19.1/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table-1.19.1/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table-1.19.1/extensions/filter-control/bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table-1.19.0/extensions/filter-control/bootstrap-table-filter-control.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table-1.19.0/extensions/filter-control/bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker-1.9.0/css/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker-1.9.0/js/bootstrap-datepicker.min.js",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "bootstrap-dark-1.1.0/css/bootstrap-prefers-dark.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "fontawesome-free-6.6.0/css/all.min.css",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega-5.33.1/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite-5.23.0/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed-6.29.0/vega-embed.min.js",
}
# GE's logo, from its S3 bucket with the time and the project's id appended (a tracking image): GE ships the light
# logo with every site (static/images); it stands in for the dark-mode one too.
GE_WEB_ASSET = re.compile(r"https://great-expectations-web-assets\.s3\.[a-z0-9-]+\.amazonaws\.com/"
                          r"(?:logo-long|full_logo_dark)\.png(?:\?[^\"'()\s<>]*)?")
GE_LOGO = Path("static") / "images" / "logo-long.png"
# A src/href path to the site's static/ folder, as GE writes it ("./static/", "../../../static/"): GE counts the
# "../" by the kind of page, one short for validation pages' favicon; recomputed from where the page really is.
_STATIC_PATH = re.compile(r"""(?:(?<=src=["'])|(?<=href=["']))(?:\./|(?:\.\./)+)?static/""")
# A known address as a whole (up to its closing quote or parenthesis): `npm/vega@5` is no prefix of another one.
_VENDORED_URL = re.compile("|".join(map(re.escape, sorted(VENDORED_FILES, key=len, reverse=True))) + r"(?=[\"'\s)>])")

# Where a page or stylesheet loads something: src/href of script, link and img tags, and CSS url(...).
_TAG = re.compile(r"<(?:script|link|img)\b[^>]*>", re.IGNORECASE)
_TAG_URL = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
_CSS_URL = re.compile(r"""url\(\s*["']?([^"')\s]+)["']?\s*\)""", re.IGNORECASE)
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)  # http://, https://, protocol-relative //
# Subresource integrity and CORS mode: a page opened as a file has an opaque origin, so a CORS-mode load of a
# neighbouring file fails, and so does its integrity check; neither is needed for a file beside the page.
_CORS_ATTRIBUTES = re.compile(r"""\s+(?:integrity\s*=\s*["'][^"']*["']|crossorigin(?:\s*=\s*["'][^"']*["'])?)""",
                              re.IGNORECASE)


def loaded_urls(text: str) -> list[str]:
    """Every address an HTML page or stylesheet loads: src/href of its script, link and img tags, and the targets of
    CSS `url(...)` (inline styles included); `data:` URLs left out."""
    urls = [match.group(1) for tag in _TAG.findall(text) for match in _TAG_URL.finditer(tag)]
    urls += _CSS_URL.findall(text)
    return [url for url in urls if not url.lower().startswith("data:")]


def remote_urls(text: str) -> list[str]:
    """The addresses among `loaded_urls` on another host (http://, https:// or protocol-relative //)."""
    return [url for url in loaded_urls(text) if _REMOTE.match(url)]


def _relative(target: Path, from_dir: Path) -> str:
    return Path(os.path.relpath(target, from_dir)).as_posix()


def rewrite_to_local(text: str, file_dir: Path, site_dir: Path) -> str:
    """`text` (a page or stylesheet in `file_dir`, inside the site at `site_dir`) with each known CDN address
    replaced by the relative path of its copy under the site's static/vendor/, GE's logo by its local copy, src/href
    paths to static/ made relative to where the file is, and integrity/crossorigin attributes dropped from the tags that
    now load a local file."""
    vendor = site_dir / SITE_VENDOR_DIR
    text = _VENDORED_URL.sub(lambda url: _relative(vendor / VENDORED_FILES[url.group(0)], file_dir), text)
    text = GE_WEB_ASSET.sub(_relative(site_dir / GE_LOGO, file_dir), text)
    text = _STATIC_PATH.sub(_relative(site_dir / "static", file_dir) + "/", text)
    return _TAG.sub(_without_cors_attributes, text)


def _without_cors_attributes(tag: re.Match) -> str:
    urls = _TAG_URL.findall(tag.group(0))
    return tag.group(0) if any(_REMOTE.match(url) for url in urls) else _CORS_ATTRIBUTES.sub("", tag.group(0))


def copy_vendored_files(site_dir: Path) -> None:
    """The vendored CSS, JavaScript and fonts (with their licenses and README) into the site's static/vendor/."""
    shutil.copytree(VENDOR_DIR, site_dir / SITE_VENDOR_DIR, dirs_exist_ok=True)


def make_data_docs_offline(site_dir: Path) -> None:
    """Make the Data Docs site at `site_dir` (the folder of its index.html) load nothing from the network: copy the
    vendored files in and rewrite every HTML page and GE stylesheet to use them. Addresses it does not know (a GE
    version whose templates load something else) are logged, left as they are."""
    site_dir = Path(site_dir)
    copy_vendored_files(site_dir)
    vendor = site_dir / SITE_VENDOR_DIR
    for path in sorted([*site_dir.rglob("*.html"), *site_dir.rglob("*.css")]):
        if vendor in path.parents:
            continue
        text = path.read_text(encoding="utf-8")
        rewritten = rewrite_to_local(text, path.parent, site_dir)
        if rewritten != text:
            path.write_text(rewritten, encoding="utf-8")
        if unknown := remote_urls(rewritten):
            logger.warning("Data Docs page %s still loads from the network: %s", path, ", ".join(sorted(set(unknown))))
