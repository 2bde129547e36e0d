"""The browser over HTTP (a real uvicorn server on a loopback port), on SQLite and PostgreSQL:
every page and API answers, nothing writes, everything from the archive is escaped."""

from __future__ import annotations

import inspect
import json
import re
import urllib.error
import urllib.request
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the archive browser needs the web extra: pip install -e '.[web]'")

from web_support import HOSTILE_MODEL, HOSTILE_REASON, SCRIPT  # noqa: E402
from web_support import demo_archive, demo_url, served  # noqa: E402, F401 - fixtures

pytestmark = pytest.mark.integration


def fetch(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, method=method, headers=headers or {},
                                     data=b"x=1" if method in ("POST", "PUT", "PATCH") else None)  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()


def pages(demo: Any) -> dict[str, str]:
    """Every page and API path of the demo archive -> a text the answer must hold."""
    relu, hostile, cross = demo.tasks["relu"], demo.hostile_kernel, demo.kernels["relu/crossover"]
    return {
        "/leaderboard": "fast_1 vs torch.compile", "/leaderboard?include_stale=1": "stale",
        "/leaderboard?sort=speedup_eager&dir=desc&policy=strict&gpu=h100": "speedup vs eager",
        "/tasks": "rmsnorm_bf16", f"/tasks/{relu}": "Winners per GPU and policy", "/tasks/softmax": "softmax",
        f"/kernels/{cross}": "Diff to each parent", f"/kernels/{hostile}": "Evaluations and provenance",
        "/runs": f"run {demo.run_id}", f"/runs/{demo.run_id}": "progress-plot",
        "/api": "/api/leaderboard", "/api/leaderboard": "geomean_speedup_compile", "/api/tasks": "gemm_relu",
        f"/api/tasks/{relu}": "winner_shapes", f"/api/kernels/{cross}": "lineage", f"/api/diff/{cross - 1}/{cross}": "source_diff",
        "/api/runs": "llm_cost_usd", f"/api/runs/{demo.run_id}": "tokens_out", "/api/stats": "evaluations",
        "/static/style.css": "stale-badge", "/static/pygments.css": ".hl",
    }  # fmt: skip


def test_every_page_and_api_answers(served) -> None:  # noqa: ANN001
    base, _, demo = served
    for path, needle in pages(demo).items():
        status, headers, body = fetch(base + path)
        assert status == 200, (path, body[:300])
        assert needle in body, path
        if path.startswith("/api"):
            json.loads(body)
            assert headers["content-type"].startswith("application/json")
        elif not path.startswith("/static"):
            assert headers["content-type"].startswith("text/html")
            assert "script-src 'none'" in headers["content-security-policy"]


def test_unknown_ids_are_404_with_a_reason(served) -> None:  # noqa: ANN001
    base, _, _ = served
    status, _, body = fetch(base + "/kernels/987654")
    assert status == 404 and "no kernel with id 987654" in body
    status, _, body = fetch(base + "/api/runs/987654")
    assert status == 404 and json.loads(body)["error"] == "no run with id 987654 in the archive"
    assert fetch(base + "/nowhere")[0] == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_no_endpoint_writes_every_other_method_is_refused(served, method: str) -> None:  # noqa: ANN001
    base, archive, demo = served
    before = archive.stats()
    for path in [*pages(demo), "/", "/nowhere", "/api/nowhere"]:
        status, headers, _ = fetch(base + path, method=method)
        assert status == 405, (method, path, status)
        assert headers["allow"] == "GET, HEAD"
    assert archive.stats() == before


def test_the_app_only_declares_get_routes(served) -> None:  # noqa: ANN001
    from autotuner.web.app import routes

    _, archive, _ = served
    for route in routes(archive):
        methods = getattr(route, "methods", None)
        assert methods is None or methods <= {"GET", "HEAD"}, route.path  # Mount (static files) has none: GET only


def test_html_from_the_archive_is_shown_as_text(served) -> None:  # noqa: ANN001
    base, _, demo = served
    for path in (f"/kernels/{demo.hostile_kernel}", f"/tasks/{demo.tasks['relu']}", f"/kernels/{demo.kernels['relu/opt1']}"):
        _, _, body = fetch(base + path)
        assert SCRIPT not in body and "<img src=x" not in body, path
    _, _, kernel = fetch(base + f"/kernels/{demo.hostile_kernel}")
    assert "&lt;script&gt;window.__pwned" in kernel  # the reason, escaped
    assert "&lt;img src=x onerror=" in kernel  # the model
    assert "script" in re.sub(r"<[^>]+>", "", kernel.split('id="source"')[1])  # the source, highlighted and escaped
    _, _, api = fetch(base + f"/api/kernels/{demo.hostile_kernel}")
    assert HOSTILE_REASON in api.replace("\\u003c", "<") or HOSTILE_REASON in json.loads(api)["kernel"]["evaluations"][0]["reason"]
    assert json.loads(api)["kernel"]["model"] == HOSTILE_MODEL


def test_leaderboard_sorts_on_the_server(served) -> None:  # noqa: ANN001
    base, _, _ = served

    def column(path: str) -> list[float]:
        _, _, body = fetch(base + path)
        sections = [s.split("</section>")[0] for s in body.split('<section class="board"')[1:]]
        return max(([float(v) for v in re.findall(r'class="num speedup-eager">([0-9.]+)x<', s)] for s in sections), key=len)

    down = column("/leaderboard?sort=speedup_eager&dir=desc")
    up = column("/leaderboard?sort=speedup_eager&dir=asc")
    assert len(down) >= 2 and down == sorted(down, reverse=True) and up == sorted(up)
    assert column("/leaderboard?sort=nonsense") == column("/leaderboard")  # an unknown key: the default order


def test_stale_results_are_marked(served) -> None:  # noqa: ANN001
    base, _, demo = served
    _, _, current = fetch(base + "/leaderboard")
    _, _, with_stale = fetch(base + "/leaderboard?include_stale=1")
    assert 'class="stale"' not in current and 'class="stale"' in with_stale
    assert f'href="/kernels/{demo.stale_kernel}"' in with_stale and f'href="/kernels/{demo.stale_kernel}"' not in current


def test_run_page_has_the_plot_with_eager_and_compile_lines_and_llm_spend(served) -> None:  # noqa: ANN001
    base, _, demo = served
    _, _, body = fetch(base + f"/runs/{demo.run_id}")
    assert body.count('class="series"') == 4  # one line per task
    assert body.count('class="compile-line"') == 4 and body.count('class="eager-line"') == 1
    assert 'id="llm-calls">18<' in body and 'id="llm-tokens-in">33740<' in body
    assert 'id="llm-cost">$0.2170<' in body
    assert "rejected" in body and "accepted" in body


def test_binds_loopback_by_default_and_refuses_other_hosts(served) -> None:  # noqa: ANN001
    from autotuner.cli.main import build_parser
    from autotuner.web.server import serve

    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    args = build_parser().parse_args(["archive", "serve"])
    assert (args.host, args.port) == ("127.0.0.1", 8787)
    base, _, _ = served
    assert base.startswith("http://127.0.0.1:")
    assert fetch(base + "/leaderboard", headers={"Host": "attacker.example"})[0] == 400  # DNS rebinding
    assert fetch(base + "/leaderboard", headers={"Host": "localhost"})[0] == 200


def test_the_browser_reads_through_the_archive_facade_only() -> None:
    """autotuner.web imports nothing of the archive but its public package (``Archive`` and rows)."""
    import ast
    from pathlib import Path

    import autotuner.web

    for path in Path(autotuner.web.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("archive"):
                assert node.module == "archive", f"{path.name}: from {node.module} import ..."
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("archive.") for a in node.names), path.name
