"""Great Expectations' Data Docs of the contract check work offline: no page loads anything from another host,
every file a page loads is there, and the index lists the validation with a link to its page."""

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from synth_platform.profiling.contract import expectation_suite, validate_contract
from synth_platform.profiling.data_docs import VENDOR_DIR, VENDORED_FILES, remote_urls, rewrite_to_local
from synth_platform.profiling.profile import align_for_comparison, apply_disclosure_control, profile_dataframe
from synth_platform_tests.profiling.built_tables import patients

CSS_URL = re.compile(r"""url\(\s*["']?([^"')\s]+)["']?\s*\)""")
REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)


class _LoadedAddresses(HTMLParser):
    """What a page loads: src/href of script, link and img tags, url(...) in <style> blocks and style attributes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img") and attrs.get("src"):
            self.urls.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.urls.append(attrs["href"])
        self.urls += CSS_URL.findall(attrs.get("style") or "")
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.urls += CSS_URL.findall(data)


def _loaded(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".css":
        urls = CSS_URL.findall(text)
    else:
        parser = _LoadedAddresses()
        parser.feed(text)
        urls = parser.urls
    return [url for url in urls if not url.startswith("data:")]


def _pages(site: Path) -> list[Path]:
    return sorted([*site.rglob("*.html"), *site.rglob("*.css")])


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A contract check's Data Docs site: GE's checkpoint in a file project, on a table that breaks one rule."""
    frame = patients()
    profile = profile_dataframe(frame, column_treatments={"notes": "drop"})
    table = align_for_comparison(apply_disclosure_control(frame, profile), profile)
    table.loc[0, "age"] = 500
    validation = validate_contract(table, expectation_suite(profile, "patients_contract"),
                                   data_docs_dir=tmp_path_factory.mktemp("docs") / "great_expectations")
    assert not validation.success and validation.data_docs_index.name == "index.html"
    return validation.data_docs_index.parent


def test_no_page_loads_anything_from_another_host(site):
    pages = _pages(site)
    assert any(p.name == "index.html" for p in pages) and any("validations" in p.parts for p in pages)
    remote = {str(p.relative_to(site)): urls for p in pages if (urls := [u for u in _loaded(p) if REMOTE.match(u)])}
    assert remote == {}


def test_every_file_a_page_loads_is_beside_it(site):
    loaded = {(page, url) for page in _pages(site) for url in _loaded(page)}
    assert any("static/vendor/jquery-3.7.1/jquery.min.js" in url for _, url in loaded)
    assert any(url.endswith(".woff2") for _, url in loaded)  # the icon fonts, through the vendored CSS
    missing = [(str(page.relative_to(site)), url) for page, url in loaded
               if not (page.parent / unquote(urlsplit(url).path)).is_file()]
    assert missing == []


def test_the_index_lists_the_validation_with_a_link_to_its_page(site):
    index = (site / "index.html").read_text(encoding="utf-8")
    # bootstrap-table draws the index's tables from these rows, with jQuery: both now load from beside the page
    links = re.findall(r"'_table_row_link_path': '([^']+)'", index)
    validation_links = [link for link in links if link.startswith("validations/")]
    assert len(validation_links) == 1 and (site / validation_links[0]).is_file()
    assert [str(p.relative_to(site)) for p in site.glob("validations/**/*.html")] == validation_links
    for script in ("jquery-3.7.1/jquery.min.js", "bootstrap-table-1.19.1/bootstrap-table.min.js"):
        assert f'<script src="static/vendor/{script}"></script>' in index


def test_a_rerun_in_the_same_project_lists_both_validations_and_stays_offline(tmp_path):
    frame = patients().head(40)
    profile = profile_dataframe(frame, column_treatments={"notes": "drop"})
    table = align_for_comparison(apply_disclosure_control(frame, profile), profile)
    suite = expectation_suite(profile, "patients_contract")
    validate_contract(table, suite, data_docs_dir=tmp_path / "gx")
    site = validate_contract(table, suite, data_docs_dir=tmp_path / "gx").data_docs_index.parent
    links = re.findall(r"'_table_row_link_path': '(validations/[^']+)'", (site / "index.html").read_text(encoding="utf-8"))
    assert len(set(links)) == 2 and all((site / link).is_file() for link in links)
    assert [p for p in _pages(site) if any(REMOTE.match(u) for u in _loaded(p))] == []


def test_rewriting_points_cdn_addresses_and_static_paths_at_the_files_and_keeps_what_it_does_not_know():
    site = Path("/site")
    page = (
        '<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>\n'
        '<link rel="shortcut icon" href="../static/images/favicon.ico"/>\n'  # GE counts one "../" short here
        '<script src="https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js" integrity="sha384-x" '
        'crossorigin="anonymous"></script>\n'
        '<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>'
        '<script src="https://cdn.jsdelivr.net/npm/vega-lite@5"></script>\n'
        '<img src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png?d=1&dataContextId=2">\n'
        '<script src="https://example.org/other.js" integrity="sha384-y" crossorigin="anonymous"></script>'
    )
    rewritten = rewrite_to_local(page, site / "validations" / "suite", site)
    assert rewritten == (
        '<link rel="stylesheet" href="../../static/vendor/bootstrap-4.3.1/css/bootstrap.min.css"/>\n'
        '<link rel="shortcut icon" href="../../static/images/favicon.ico"/>\n'
        '<script src="../../static/vendor/bootstrap-4.3.1/js/bootstrap.min.js"></script>\n'
        '<script src="../../static/vendor/vega-5.33.1/vega.min.js"></script>'
        '<script src="../../static/vendor/vega-lite-5.23.0/vega-lite.min.js"></script>\n'
        '<img src="../../static/images/logo-long.png">\n'
        '<script src="https://example.org/other.js" integrity="sha384-y" crossorigin="anonymous"></script>'
    )
    assert rewrite_to_local(rewritten, site / "validations" / "suite", site) == rewritten  # idempotent
    assert remote_urls(rewritten) == ["https://example.org/other.js"]


def test_every_vendored_file_is_shipped():
    assert [name for name in VENDORED_FILES.values() if not (VENDOR_DIR / name).is_file()] == []
    assert (VENDOR_DIR / "README.md").is_file()
