"""``stepdpo review``: a local web page on which a person locates first errors or vets step pairs
(Sec. 3.2: localization and the s_win filter "can be done manually").

A small Starlette app served by uvicorn, with one plain HTML page: the page needs keyboard
shortcuts and a request per decision, which a few lines of script do directly (a Gradio app would
bring a large dependency and its own state model for the same). It binds to 127.0.0.1; any other
host needs the token printed at start, given once as ``?token=...`` (the page keeps it for its tab
and sends it as a header).
"""

from __future__ import annotations

import hmac
import json
import secrets
from importlib import resources
from pathlib import Path
from typing import Any

from stepdpo.net import is_loopback
from stepdpo.review.store import Review, item_view

MAX_BODY = 64 * 1024  # a decision is a few dozen bytes
TOKEN_HEADER = "X-Stepdpo-Token"


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def allowed_hosts(host: str, port: int) -> set[str] | None:
    """The Host headers a server on ``host:port`` answers; None (any) off the loopback, where the
    token guards it. On the loopback a page from another name (DNS rebinding) is refused."""
    if not is_loopback(host):
        return None
    names = {"127.0.0.1", "localhost", "[::1]", host if ":" not in host else f"[{host}]"}
    return {f"{n}:{port}" for n in names} | (names if port == 80 else set())


def make_app(review: Review, token: str | None = None, hosts: set[str] | None = None) -> Any:
    """The Starlette app over ``review``. Like Jupyter's server it trusts no other page in the
    browser: the Host must be one of ``hosts`` (when given), a request sent by another origin is
    refused, a decision is a JSON body (which another origin cannot send without asking first),
    the page may not be framed, and its script runs under a per-response nonce. With ``token``,
    every API request must carry it (the ``X-Stepdpo-Token`` header, or ``?token=``)."""
    try:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import HTMLResponse, JSONResponse, Response
        from starlette.routing import Route
    except ImportError as e:  # pragma: no cover
        raise ImportError("the review page needs its web extra: pip install 'stepdpo[ui]'") from e

    page = resources.files("stepdpo.review").joinpath("page.html").read_text(encoding="utf-8")

    def check(request: Request, api: bool) -> None:
        host = request.headers.get("host", "")
        if hosts is not None and host not in hosts:
            raise Refused(403, f"host {host!r} is not this server's address")
        if not api:  # the page itself holds no data: any link may open it
            return
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{host}":
            raise Refused(403, "a request from another origin")
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            raise Refused(403, "a request from another site")
        if token is not None:
            given = request.headers.get(TOKEN_HEADER) or request.query_params.get("token") or ""
            if not hmac.compare_digest(given.encode("utf-8", "replace"), token.encode()):
                raise Refused(403, "a token is needed: open the address printed at start")

    def guard(handler, api: bool = True):
        async def wrapped(request: Request) -> Response:
            try:
                check(request, api)
                response = await handler(request)
            except Refused as e:
                response = JSONResponse({"error": str(e)}, e.status)
            response.headers["X-Frame-Options"] = "DENY"
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Referrer-Policy"] = "no-referrer"
            response.headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
            response.headers["Cache-Control"] = "no-store"
            return response

        return wrapped

    async def json_body(request: Request) -> dict[str, Any]:
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            raise Refused(415, "the body must be application/json")
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            raise Refused(413, f"a body of at most {MAX_BODY} bytes")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise Refused(413, f"a body of at most {MAX_BODY} bytes")
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise Refused(400, "the body is not JSON") from None
        if not isinstance(data, dict):
            raise Refused(400, "the body must be a JSON object")
        return data

    def state() -> dict[str, Any]:
        pending = review.pending()
        return {
            "mode": review.mode,
            "annotator": review.annotator,
            "total": len(review.items),
            "done": len(review.decided),
            "can_undo": review.can_undo,
            "item": item_view(pending[0], review.mode) if pending else None,
        }

    async def index(request: Request) -> Response:
        nonce = secrets.token_urlsafe(16)
        csp = (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; connect-src 'self'; "
            "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        return HTMLResponse(page.replace("{{nonce}}", nonce), headers={"Content-Security-Policy": csp})

    async def get_state(request: Request) -> Response:
        return JSONResponse(state())

    async def decide(request: Request) -> Response:
        body = await json_body(request)
        iid, decision, step = body.get("id"), body.get("decision"), body.get("step")
        try:
            if not isinstance(iid, str) or not isinstance(decision, str):
                raise ValueError("'id' and 'decision' must be strings")
            review.decide(iid, decision, step)
        except (ValueError, KeyError) as e:
            return JSONResponse({"error": str(e).strip("'\""), **state()}, 400)
        return JSONResponse(state())

    async def undo(request: Request) -> Response:
        await json_body(request)
        try:
            review.undo()
        except ValueError as e:
            return JSONResponse({"error": str(e), **state()}, 400)
        return JSONResponse(state())

    async def summary(request: Request) -> Response:
        return JSONResponse(review.summary())

    routes = [
        Route("/", guard(index, api=False)),
        Route("/summary", guard(index, api=False)),
        Route("/api/state", guard(get_state)),
        Route("/api/decide", guard(decide), methods=["POST"]),
        Route("/api/undo", guard(undo), methods=["POST"]),
        Route("/api/summary", guard(summary)),
    ]
    return Starlette(routes=routes)


def serve(inp: str | Path, out: str | Path, mode: str, host: str, port: int, annotator: str, on_start=print) -> None:
    """Serve the review page until interrupted; the output is locked for the server's life."""
    from stepdpo.recordio import exclusive
    from stepdpo.review.store import load_items

    try:
        import uvicorn
    except ImportError as e:
        raise ImportError("the review page needs its web extra: pip install 'stepdpo[ui]'") from e
    items = load_items(inp, mode)
    if not items:
        raise ValueError(f"{inp}: nothing to review")
    token = None if is_loopback(host) else secrets.token_urlsafe(18)
    with exclusive(out):
        review = Review(items, Path(out), mode, annotator)
        try:
            address = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
            on_start(
                f"review ({mode}): {len(review.decided)} of {len(items)} decided; open {address}"
                + (f"?token={token}" if token else "")
                + f"  (summary: {address}summary)"
            )
            uvicorn.run(make_app(review, token, allowed_hosts(host, port)), host=host, port=port, log_level="warning")
        finally:
            review.close()
