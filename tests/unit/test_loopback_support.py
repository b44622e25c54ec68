from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.loopback import serve_asgi


def test_serves_an_app_on_a_free_loopback_port():
    async def hello(request):
        return JSONResponse({"path": request.url.path})

    app = Starlette(routes=[Route("/x", hello)])
    with serve_asgi(app) as url:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/x").json() == {"path": "/x"}
    try:
        httpx.get(f"{url}/x", timeout=1)
    except httpx.TransportError:
        pass
    else:
        raise AssertionError("server still answering after exit")
