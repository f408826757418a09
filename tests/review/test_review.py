"""stepdpo review: decisions kept across kills, tokens off this machine, and a real browser."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from stepdpo.exchange import case_to_located
from stepdpo.experiments.judge_eval import load_cases
from stepdpo.recordio import read_records, write_records
from stepdpo.records import NO_WRONG_STEP, LocatedError
from stepdpo.review import Review, decisions_path

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
# STEPDPO_SCREENSHOTS=docs/img python -m pytest tests/review  redraws the docs' screenshots
SHOTS = Path(os.environ["STEPDPO_SCREENSHOTS"]) if os.environ.get("STEPDPO_SCREENSHOTS") else None


@pytest.fixture
def located(tmp_path):
    """Four located errors, as a rollout judge might leave them: located, one step late, abstained."""
    errs = []
    for i, c in enumerate(c for c in load_cases("synthetic", 30) if c.label >= 1):
        err = case_to_located(c, judge="rollout")
        if i == 1:
            err = LocatedError(err.solution, min(c.label + 2, len(c.steps)), "rollout")
        if i == 2:
            err = LocatedError(err.solution, None, "rollout", reason="unsolvable_by_policy")
        errs.append(err)
        if len(errs) == 4:
            break
    path = tmp_path / "located.jsonl"
    write_records(path, errs)
    return path


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(inp, out, *extra, port=None):
    port = port or _port()
    cmd = [sys.executable, "-m", "stepdpo.cli", "review", "--in", str(inp), "--out", str(out), "--port", str(port)]
    proc = subprocess.Popen([*cmd, *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "api/state", timeout=1)
            return proc, url
        except urllib.error.HTTPError:
            return proc, url
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read()) from None
            time.sleep(0.1)
    raise AssertionError("the review server did not start")


def _post(url, body):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        return 200, json.loads(urllib.request.urlopen(req).read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_decisions_survive_a_kill_between_decision_and_record(located, tmp_path):
    out = tmp_path / "human.jsonl"
    items, _ = read_records(located, "located_error")
    r = Review(items, out, "locate", "ana")
    r.decide(items[0].id, "step", 2)
    r.decide(items[1].id, "no_wrong_step")
    r.decide(items[2].id, "skip")
    with pytest.raises(ValueError, match="already decided"):
        r.decide(items[0].id, "step", 1)
    with pytest.raises(ValueError, match="step must be a whole number 1.."):
        r.decide(items[3].id, "step", 99)
    r.close()
    # as if killed after writing a decision but before its record: drop the last output line
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:-1]))
    r = Review(items, out, "locate", "ana")
    assert [it.id for it in r.pending()] == [items[3].id]
    got, _ = read_records(out, "located_error")
    assert [(e.first_error_step, e.reason, e.judge) for e in got] == [
        (2, None, "human"),
        (None, NO_WRONG_STEP, "human"),
    ]
    assert got[0].evidence == {"annotator": "ana", "auto_judge": "rollout", "auto_step": items[0].first_error_step}
    assert len(decisions_path(out).read_text().splitlines()) == 3
    s = r.summary()
    assert s["decided"] == 3 and s["decisions"] == {"step": 1, "no_wrong_step": 1, "skip": 1}
    r.close()


def test_the_server_off_this_machine_needs_the_token(located, tmp_path):
    port = _port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "stepdpo.cli", "review", "--in", str(located), "--out", str(tmp_path / "o.jsonl")]
        + ["--host", "0.0.0.0", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "?token=" in line, line
        token = line.split("?token=")[1].split()[0]
        url = f"http://127.0.0.1:{port}/api/state"
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1)
                raise AssertionError("served without the token")
            except urllib.error.HTTPError as e:
                assert e.code == 403
                break
            except OSError:
                time.sleep(0.1)
        state = json.loads(urllib.request.urlopen(f"{url}?token={token}").read())
        assert state["total"] == 4 and state["done"] == 0
        # the token is a header the page sends, never a cookie another page of this host could ride on
        base = f"http://127.0.0.1:{port}/"
        status, headers, _ = _raw(base, f"/api/state?token={token}")
        assert status == 200 and "set-cookie" not in headers
        assert _raw(base, "/api/state", headers={"X-Stepdpo-Token": token})[0] == 200
        assert _raw(base, "/api/state", headers={"X-Stepdpo-Token": "wrong"})[0] == 403
        assert _raw(base, "/api/state?token=%C3%A9t%C3%A9")[0] == 403  # a non-ASCII token is refused, not a 500
    finally:
        proc.terminate()
        proc.wait(10)


def test_bad_input_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"problem": 3}\n')
    res = subprocess.run(
        [sys.executable, "-m", "stepdpo.cli", "review", "--in", str(bad), "--out", str(tmp_path / "o.jsonl")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "x.jsonl:1" in res.stdout + res.stderr and "Traceback" not in res.stderr


@contextlib.contextmanager
def _page(height):
    """A page in headless Chromium (Debian's package), or the test is skipped without one."""
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("needs Chromium (Debian: apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield browser.new_page(viewport={"width": 1100, "height": height})
        finally:
            browser.close()


def test_in_a_real_browser_by_click_and_by_keyboard_across_a_kill(located, tmp_path):
    out = tmp_path / "human.jsonl"
    items, _ = read_records(located, "located_error")
    proc, url = _start(located, out)
    try:
        with _page(900) as page:
            page.goto(url)
            page.wait_for_selector("#step-1")
            assert "0 of 4 decided" in page.inner_text("#progress")
            assert page.inner_text("#problem") == items[0].solution.problem
            if SHOTS:
                page.screenshot(path=str(SHOTS / "review-locate.png"), full_page=True)
            page.click("#step-2")  # by click
            page.wait_for_selector("text=1 of 4 decided")
            page.keyboard.press("n")  # by keyboard: no wrong step
            page.wait_for_selector("text=2 of 4 decided")
            os.kill(proc.pid, signal.SIGKILL)  # the server dies; nothing decided is lost
            proc.wait(10)
            proc, url = _start(located, out, port=int(url.rsplit(":", 1)[1].strip("/")))
            page.goto(url)
            page.wait_for_selector("text=2 of 4 decided")
            assert page.inner_text("#problem") == items[2].solution.problem  # not asked again
            page.keyboard.press("j")
            page.keyboard.press("Enter")  # the step under the cursor: step 2
            page.wait_for_selector("text=3 of 4 decided")
            page.keyboard.press("s")
            page.wait_for_selector("#finished")
            page.goto(url + "summary")
            page.wait_for_selector("#summary table")
            assert "rollout" in page.inner_text("#summary")
            if SHOTS:
                page.screenshot(path=str(SHOTS / "review-summary.png"), full_page=True)
    finally:
        proc.terminate()
        proc.wait(10)
    got, _ = read_records(out, "located_error")
    assert [(e.id, e.first_error_step) for e in got] == [(items[0].id, 2), (items[1].id, None), (items[2].id, 2)]
    decisions = [json.loads(x) for x in decisions_path(out).read_text().splitlines()]
    assert [d["decision"] for d in decisions] == ["step", "no_wrong_step", "step", "skip"]  # none twice


def test_pairs_in_a_real_browser(tmp_path):
    from helpers import toy_pairs

    pairs = toy_pairs(3)
    inp, out = tmp_path / "pairs.jsonl", tmp_path / "kept.jsonl"
    write_records(inp, pairs)
    proc, url = _start(inp, out, "--mode", "pairs")
    try:
        with _page(760) as page:
            page.goto(url)
            page.wait_for_selector("#chosen")
            assert page.inner_text("#chosen").strip() == pairs[0].chosen.strip()
            if SHOTS:
                page.screenshot(path=str(SHOTS / "review-pairs.png"), full_page=True)
            page.click("#keep")
            page.wait_for_selector("text=1 of 3 decided")
            page.keyboard.press("d")
            page.wait_for_selector("text=2 of 3 decided")
            page.keyboard.press("a")
            page.wait_for_selector("#finished")
    finally:
        proc.terminate()
        proc.wait(10)
    kept, _ = read_records(out, "step_pair")
    assert kept == [pairs[0], pairs[2]]


def test_wrong_solutions_are_reviewed_without_a_judges_verdict(located, tmp_path):
    from stepdpo.review import load_items
    from stepdpo.review.store import item_view

    sols = tmp_path / "errors.jsonl"
    write_records(sols, [e.solution for e in read_records(located, "located_error")[0]])
    items = load_items(sols, "locate")
    assert len(items) == 4 and item_view(items[0], "locate")["auto"] is None
    r = Review(items, tmp_path / "human.jsonl", "locate", "ana")
    r.decide(items[0].id, "step", 1)
    assert r.summary()["agreement"] == {}  # nothing to agree with
    r.close()


def test_a_step_must_be_a_whole_number_not_a_bool(located, tmp_path):
    items, _ = read_records(located, "located_error")
    r = Review(items, tmp_path / "h.jsonl", "locate", "ana")
    with pytest.raises(ValueError, match="whole number"):
        r.decide(items[0].id, "step", True)
    r.close()


def test_undo_takes_a_decision_back_and_its_record_out(located, tmp_path):
    out = tmp_path / "h.jsonl"
    items, _ = read_records(located, "located_error")
    r = Review(items, out, "locate", "ana")
    r.decide(items[0].id, "step", 2)
    r.decide(items[1].id, "step", 1)
    assert r.can_undo and r.undo() == items[1].id and not r.can_undo
    assert r.pending()[0].id == items[1].id  # asked again, first
    assert [e.id for e in read_records(out, "located_error")[0]] == [items[0].id]
    r.decide(items[1].id, "no_wrong_step")
    r.close()
    r = Review(items, out, "locate", "ana")  # a restart keeps the undo and the new decision
    got = read_records(out, "located_error")[0]
    assert [(e.id, e.first_error_step) for e in got] == [(items[0].id, 2), (items[1].id, None)]
    assert set(r.decided) == {items[0].id, items[1].id}
    r.close()


def test_a_damaged_decision_line_is_recovered_from_the_output_not_asked_twice(located, tmp_path):
    out = tmp_path / "h.jsonl"
    items, _ = read_records(located, "located_error")
    r = Review(items, out, "locate", "ana")
    for it, k in zip(items[:3], (2, 1, 3)):
        r.decide(it.id, "step", k)
    r.close()
    lines = decisions_path(out).read_text().splitlines(keepends=True)
    lines[1] = lines[1][:20] + "\x00garbled\n"
    decisions_path(out).write_text("".join(lines))
    r = Review(items, out, "locate", "ana")
    assert [it.id for it in r.pending()] == [items[3].id]
    assert r.decided[items[1].id]["step"] == 1 and r.decided[items[1].id]["recovered"]
    r.close()
    assert [e.id for e in read_records(out, "located_error")[0]] == [it.id for it in items[:3]]  # once each


def test_two_outputs_keep_their_own_decisions(located, tmp_path):
    assert decisions_path(tmp_path / "h.jsonl") != decisions_path(tmp_path / "h.json")
    items, _ = read_records(located, "located_error")
    a, b = Review(items, tmp_path / "h.jsonl", "locate", "ana"), Review(items, tmp_path / "h.json", "locate", "bo")
    a.decide(items[0].id, "step", 1)
    b.decide(items[0].id, "no_wrong_step")  # its own file: no contradiction in one record
    assert Review(items, tmp_path / "h.jsonl.x", "locate", "c").decided == {}
    a.close(), b.close()


def _raw(url, path, method="GET", body=None, headers=None):
    """A request with headers a browser would set (Host, Origin), by http.client."""
    import http.client

    host, port = url.split("//")[1].strip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def test_the_loopback_server_refuses_other_origins_and_bad_bodies(located, tmp_path):
    out = tmp_path / "h.jsonl"
    items, _ = read_records(located, "located_error")
    proc, url = _start(located, out)
    port = url.rsplit(":", 1)[1].strip("/")
    good = json.dumps({"id": items[0].id, "decision": "step", "step": 1})
    js = {"Content-Type": "application/json"}
    try:
        # a form or a no-cors fetch from another page can send text/plain only
        assert _raw(url, "/api/decide", "POST", good, {"Content-Type": "text/plain"})[0] == 415
        assert _raw(url, "/api/decide", "POST", good, {**js, "Origin": "http://evil.example"})[0] == 403
        assert _raw(url, "/api/decide", "POST", good, {**js, "Origin": "http://127.0.0.1:1"})[0] == 403  # another port
        assert _raw(url, "/api/decide", "POST", good, {**js, "Sec-Fetch-Site": "cross-site"})[0] == 403
        assert _raw(url, "/api/state", headers={"Host": f"rebound.example:{port}"})[0] == 403  # DNS rebinding
        for body in ("[1]", "null", '"x"', "[" * 200_000 + "]" * 200_000, "{oops", '{"id": 3, "decision": "skip"}'):
            status, _, data = _raw(url, "/api/decide", "POST", body, js)
            assert status in (400, 413) and "error" in json.loads(data), body[:20]
        status, _, _ = _raw(url, "/api/decide", "POST", "x" * 300_000, js)
        assert status == 413
        assert json.loads(_raw(url, "/api/state")[2])["done"] == 0  # nothing above was recorded
        status, headers, page = _raw(url, "/")
        assert headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in headers["content-security-policy"]
        nonce = headers["content-security-policy"].split("'nonce-")[1].split("'")[0]
        assert f'<script nonce="{nonce}">'.encode() in page and b"onclick" not in page
        assert _raw(url, "/api/decide", "POST", good, {**js, "Origin": f"http://127.0.0.1:{port}"})[0] == 200
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def _other_origin(html):
    """A page on another port of this machine (another origin, the same site)."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(html.encode())

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}/"
    finally:
        srv.shutdown()


def test_in_a_real_browser_another_page_can_neither_decide_nor_frame_it(located, tmp_path):
    items, _ = read_records(located, "located_error")
    proc, url = _start(located, tmp_path / "h.jsonl")
    body = json.dumps({"id": items[0].id, "decision": "skip"})
    attack = f"""<iframe id="fr" src="{url}"></iframe>
    <form id="f" method="POST" action="{url}api/decide" enctype="text/plain" target="sink">
      <input name='{body[:-1]}, "x": "' value='"}}'></form><iframe name="sink"></iframe>
    <script>
      fetch("{url}api/decide", {{method: "POST", mode: "no-cors", body: {json.dumps(body)}}});
      fetch("{url}api/decide", {{method: "POST", headers: {{"Content-Type": "application/json"}}, body: {json.dumps(body)}}}).catch(() => {{}});
      document.getElementById("f").submit();
    </script>"""
    try:
        with _other_origin(attack) as evil, _page(700) as page:
            page.goto(evil)
            page.wait_for_timeout(1500)
            framed = [f for f in page.frames if f.url.startswith(url)]
            assert all(f.query_selector("#progress") is None for f in framed)  # framing refused
        state = json.loads(urllib.request.urlopen(url + "api/state").read())
        assert state["done"] == 0  # neither the fetches nor the form recorded anything
    finally:
        proc.terminate()
        proc.wait(10)


def test_in_a_real_browser_a_pending_digit_never_labels_the_next_item_and_undo(tmp_path):
    errs = [case_to_located(c, judge="verifier") for c in load_cases("synthetic-long", 3)]
    assert all(len(e.solution.steps) >= 10 for e in errs)
    inp, out = tmp_path / "long.jsonl", tmp_path / "h.jsonl"
    write_records(inp, errs)
    proc, url = _start(inp, out)
    try:
        with _page(900) as page:
            page.goto(url)
            page.wait_for_selector("#step-10")
            page.keyboard.press("1")  # could be 1 or 1x: waits for a second digit
            page.keyboard.press("n")  # no wrong step on this item; the pending "1" must not follow
            page.wait_for_selector("text=1 of 3 decided")
            page.wait_for_timeout(1200)
            assert "1 of 3 decided" in page.inner_text("#progress")
            assert page.inner_text("#problem") == errs[1].solution.problem
            page.keyboard.press("u")  # undo: the first item is back
            page.wait_for_selector("text=0 of 3 decided")
            assert page.inner_text("#problem") == errs[0].solution.problem
            page.keyboard.press("1")
            page.keyboard.press("2")  # step 12
            page.wait_for_selector("text=1 of 3 decided")
    finally:
        proc.terminate()
        proc.wait(10)
    got = read_records(out, "located_error")[0]
    assert [(e.id, e.first_error_step) for e in got] == [(errs[0].id, 12)]


def test_in_a_real_browser_a_stale_tab_shows_the_fresh_item(located, tmp_path):
    items, _ = read_records(located, "located_error")
    proc, url = _start(located, tmp_path / "h.jsonl")
    try:
        with _page(900) as a:
            b = a.context.browser.new_page()
            for p in (a, b):
                p.goto(url)
                p.wait_for_selector("#step-1")
            a.click("#step-1")
            a.wait_for_selector("text=1 of 4 decided")
            b.click("#step-2")  # b still shows the first item: refused, and b moves on
            b.wait_for_selector("#error")
            assert "already decided" in b.inner_text("#error")
            assert b.inner_text("#problem") == items[1].solution.problem and "1 of 4" in b.inner_text("#progress")
    finally:
        proc.terminate()
        proc.wait(10)
