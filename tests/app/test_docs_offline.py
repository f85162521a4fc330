"""Every page the service serves works offline, and its OpenAPI document is complete."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from app.http.openapi_examples import ERRORS, EXAMPLES

PAGES = ["/", "/docs", "/redoc"]
# An absolute URL with a host, or a protocol-relative one, anywhere in a page or stylesheet.
ANOTHER_HOST = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}""")


class References(HTMLParser):
    """Every URL a page makes the browser load or link to."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, _tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "srcset", "data", "action", "spec-url"} and value:
                self.urls.append(value)


def references(html: str) -> list[str]:
    parser = References()
    parser.feed(html)
    # Script text too: the docs pages name their assets and the schema inside inline scripts.
    quoted = re.findall(r"""['"](/[^'"\s]*|https?://[^'"\s]*)['"]""", html)
    return parser.urls + quoted


@pytest.fixture(scope="module")
def openapi(shared_client: httpx.Client) -> dict[str, Any]:
    schema: dict[str, Any] = shared_client.get("/openapi.json").json()
    return schema


@pytest.mark.parametrize("page", PAGES)
def test_pages_load_nothing_from_another_host(shared_client: httpx.Client, page: str) -> None:
    response = shared_client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert ANOTHER_HOST.search(html) is None, ANOTHER_HOST.search(html)
    urls = references(html)
    assert urls, "the page references its assets"
    for url in urls:
        if url.startswith("#"):
            continue
        assert not urlsplit(url).netloc, url
        asset = shared_client.get(url)
        assert asset.status_code == 200, url
        if url.endswith(".css"):
            # Stylesheets may pull fonts and images in with url(...).
            for target in re.findall(r"url\(\s*['\"]?([^'\")]+)", asset.text):
                assert target.startswith(("data:", "#")) or not urlsplit(target).netloc, target


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_forbid_other_hosts_to_the_browser(
    shared_client: httpx.Client, page: str
) -> None:
    # The vendored bundles hold a few absolute URLs (ReDoc's sidebar logo among them); the
    # policy makes the browser refuse them, so nothing leaves the machine even so.
    policy = shared_client.get(page).headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'self'"
    for directive in ("script-src", "style-src", "img-src", "font-src", "connect-src"):
        sources = directives[directive].split()
        assert all(s in {"'self'", "'unsafe-inline'", "data:"} for s in sources), directive


def test_favicon_and_swagger_settings(shared_client: httpx.Client) -> None:
    assert shared_client.get("/favicon.ico").headers["content-type"] == "image/png"
    docs = shared_client.get("/docs").text
    assert '"validatorUrl": null' in docs
    assert "/static/vendor/favicon-32x32.png" in docs
    assert "fonts.googleapis" not in shared_client.get("/redoc").text


def test_bearer_scheme_on_every_route_that_takes_a_key(openapi: dict[str, Any]) -> None:
    scheme = openapi["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    operations = {
        (method.upper(), path): op
        for path, ops in openapi["paths"].items()
        for method, op in ops.items()
    }
    # POST /predict resolves its caller by hand (no Depends), and still takes a key.
    with_key = [("POST", "/train"), ("GET", "/jobs/{job_id}/events"), ("GET", "/admin/keys")]
    for key in [*with_key, ("POST", "/predict")]:
        assert operations[key]["security"] == [{"bearerAuth": []}, {}]
        assert "401" in operations[key]["responses"]
    for key in [("GET", "/healthz"), ("GET", "/metrics")]:
        assert "security" not in operations[key]


def test_every_operation_has_examples_and_its_own_errors(openapi: dict[str, Any]) -> None:
    for path, ops in openapi["paths"].items():
        if path.startswith("/v2"):
            continue  # the inference protocol documents its own shapes
        for method, op in ops.items():
            key = (method.upper(), path)
            success = [s for s in op["responses"] if s.startswith("2")]
            contents = [op["responses"][s].get("content", {}) for s in success]
            has_body = any(contents)
            examples = [media.get("example") for c in contents for media in c.values()]
            assert not has_body or any(e is not None for e in examples), key
            for media in op.get("requestBody", {}).get("content", {}).values():
                assert "example" in media or media.get("schema", {}).get("format") == "binary", key
            errors = {s for s in op["responses"] if s[0] in "45"}
            if key in ERRORS:
                expected = {str(code) for code in ERRORS[key]}
                expected |= {"401"} if "security" in op else set()
                expected |= {"415"} if method in ("post", "put", "patch") else set()
                assert errors == expected, key
                for status in errors:
                    body = op["responses"][status]["content"]["application/json"]
                    assert body["example"]["error"]["code"], (key, status)
    assert set(EXAMPLES) <= {(m.upper(), p) for p, ops in openapi["paths"].items() for m in ops}, (
        "an example names an operation that does not exist"
    )


def test_upload_bodies_are_described(openapi: dict[str, Any]) -> None:
    upload = openapi["paths"]["/datasets"]["post"]["requestBody"]["content"]
    form = upload["multipart/form-data"]
    assert form["schema"]["properties"]["file"]["format"] == "binary"
    assert form["example"]["label_column"] == "diagnosis"
    assert upload["application/json"]["example"]["labels"] == [0, 1, 1, 0]
    predict = openapi["paths"]["/predict"]["post"]
    assert "application/x-npy" in predict["requestBody"]["content"]
    assert "application/x-npy" in predict["responses"]["200"]["content"]
    assert (
        len(predict["requestBody"]["content"]["application/json"]["example"]["instances"][0]) == 30
    )
    accepted = openapi["components"]["schemas"]["JobAccepted"]["properties"]
    assert {"id", "job_id"} <= set(accepted)


def test_every_reference_resolves(openapi: dict[str, Any]) -> None:
    """ReDoc renders nothing if one $ref points nowhere (e.g. a nested pydantic `#/$defs/...`)."""

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    for ref in set(refs(openapi)):
        assert ref.startswith("#/"), ref
        target: Any = openapi
        for token in ref[2:].split("/"):
            assert isinstance(target, dict) and token in target, ref
            target = target[token]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("page", "rendered"),
    [("/docs", 'class="opblock-summary-path"'), ("/redoc", "Upload a dataset as JSON rows")],
)
def test_docs_pages_render_in_chromium_from_this_host_only(
    shared_client: httpx.Client, tmp_path: Path, page: str, rendered: str
) -> None:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "chromium is not installed (scripts/install-test-tools installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    run = subprocess.run(
        [
            path, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000",
            "--enable-logging=stderr", "--v=0", "--dump-dom",
            f"{str(shared_client.base_url).rstrip('/')}{page}",
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert rendered in run.stdout, run.stderr[-3000:]
    # Whatever a bundle tries to fetch from elsewhere, the browser refused it.
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    violations = [line for line in console if "Content Security Policy" in line]
    assert all("has been blocked" in line for line in violations), violations
    assert not [line for line in console if "Uncaught" in line or "Error:" in line], console


@pytest.mark.parametrize("path", ["/datasets", "/predict"])
def test_the_415_these_routes_answer_is_documented(
    shared_client: httpx.Client, openapi: dict[str, Any], path: str
) -> None:
    answer = shared_client.post(path, content=b"x", headers={"content-type": "text/plain"})
    assert answer.status_code == 415
    assert "415" in openapi["paths"][path]["post"]["responses"]
