"""``stepdpo review``: a local web page on which a person locates first errors or vets step pairs
(Sec. 3.2: localization and the s_win filter "can be done manually").

A small Starlette app served by uvicorn, with one plain HTML page: the page needs keyboard
shortcuts and a request per decision, which a few lines of script do directly (a Gradio app would
bring a large dependency and its own state model for the same). It binds to 127.0.0.1; any other
host needs the token printed at start, given once as ``?token=...`` (kept in a cookie).
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


def make_app(review: Review, token: str | None = None) -> Any:
    """The Starlette app over ``review``; with ``token``, every request must carry it."""
    try:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import HTMLResponse, JSONResponse, Response
        from starlette.routing import Route
    except ImportError as e:  # pragma: no cover
        raise ImportError("the review page needs its web extra: pip install 'stepdpo[ui]'") from e

    page = resources.files("stepdpo.review").joinpath("page.html").read_text(encoding="utf-8")

    def allowed(request: Request) -> bool:
        if token is None:
            return True
        given = request.query_params.get("token") or request.cookies.get("stepdpo_token") or ""
        return hmac.compare_digest(given, token)

    def guard(handler):
        async def wrapped(request: Request) -> Response:
            if not allowed(request):
                return JSONResponse({"error": "a token is needed: open the address printed at start"}, 403)
            response = await handler(request)
            if token is not None and request.query_params.get("token") == token:
                response.set_cookie("stepdpo_token", token, httponly=True, samesite="strict")
            return response

        return wrapped

    def state() -> dict[str, Any]:
        pending = review.pending()
        return {
            "mode": review.mode,
            "annotator": review.annotator,
            "total": len(review.items),
            "done": len(review.decided),
            "item": item_view(pending[0], review.mode) if pending else None,
        }

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    async def get_state(request: Request) -> Response:
        return JSONResponse(state())

    async def decide(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            review.decide(str(body.get("id")), str(body.get("decision")), body.get("step"))
        except (ValueError, KeyError, TypeError) as e:
            return JSONResponse({"error": str(e).strip("'\""), **state()}, 400)
        return JSONResponse(state())

    async def summary(request: Request) -> Response:
        return JSONResponse(review.summary())

    routes = [
        Route("/", guard(index)),
        Route("/summary", guard(index)),
        Route("/api/state", guard(get_state)),
        Route("/api/decide", guard(decide), methods=["POST"]),
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
            uvicorn.run(make_app(review, token), host=host, port=port, log_level="warning")
        finally:
            review.close()
