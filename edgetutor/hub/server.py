"""The hub's HTTP API and dashboard: one Starlette app (`make_app`) served by uvicorn (`serve`).

Handlers are plain functions, which Starlette runs in its thread pool, so a batch being verified
and written never blocks the event loop (pings and the dashboard keep answering). The database
work itself is serialised by HubDB's lock and SQLite's write lock.
"""

from __future__ import annotations

import hmac
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlencode

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..sync import protocol
from ..textsafe import one_line
from . import HubError
from .accounts import (
    EVERYTHING,
    SESSION_HOURS,
    Account,
    prune_sessions,
    record,
    scope_of,
    session_account,
    sign_in,
    sign_out,
)
from .accounts import Scope as Sites
from .catalogue import catalogue, pack_file
from .db import HubDB
from .ingest import enroll, idempotency_hash, ingest, parse_json
from .limits import (
    IDEMPOTENCY_DAYS,
    PRUNE_EVERY_S,
    Buckets,
    Rate,
    RateLimited,
    SharedBuckets,
    create_table,
)
from .report import Filters

# Per client address and per device (docs/hub.md; `hub serve --per-address/--per-device`).
DEFAULT_PER_ADDRESS = Rate(50.0, 200)
DEFAULT_PER_DEVICE = Rate(10.0, 20)
# Sign-in attempts per client address: 10 at once, then one every 5 s (scrypt makes each cost
# ~0.1 s of the hub's CPU, and guessing must stay slow).
SIGN_IN_RATE = Rate(0.2, 10)
SESSION_COOKIE = "edgetutor_session"
LOGIN_CSRF_COOKIE = "edgetutor_signin"
MAX_FORM = 10_000  # bytes: a sign-in form is a name, a password and two tokens

log = logging.getLogger("edgetutor.hub")

# Seconds an idle keep-alive connection is kept open.
REQUEST_IDLE_S = 5
# A batch of 200 results is ~0.5 MB; a request is refused past this, before it is read whole.
MAX_BODY = 16 * 1024 * 1024
# Batches processed at once by one worker process; more wait their turn on the event loop. A
# few are enough to overlap one batch's database round trips with another's verifying: more
# threads only contend for the interpreter lock (measured: ~10% fewer events/s at 40 than at
# 4, docs/hub.md). It also bounds a worker's PostgreSQL connections for ingest.
INGEST_THREADS = 4
# The dashboard runs no script at all: even a name that slipped past escaping could not execute.
# One script, the hub's own (local times); forms only to this hub (the dashboard's GET filters).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _body_bytes(request: Request) -> bytes:
    """The request body, read with a size cap, never whole before the check."""
    too_large = HubError(f"request body larger than {MAX_BODY // (1024 * 1024)} MB", 413)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise too_large
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise too_large
            chunks.append(chunk)
    except ClientDisconnect as err:
        # Nothing to answer; one line in the log (on_hub_error), not a traceback.
        raise HubError(f"the client disconnected after {size:,} bytes of the request", 400) from err
    return b"".join(chunks)


async def _json_body(request: Request) -> tuple[Any, bytes]:
    """The parsed JSON body and its bytes."""
    body = await _body_bytes(request)
    # Parsing a body of several MB takes a while: off the event loop, so pings keep answering.
    return await run_in_threadpool(parse_json, body, "request body"), body


class OneLineErrors:
    """ASGI middleware: an exception no handler expected is logged as one line and answered
    with a JSON 500, instead of uvicorn's "Exception in ASGI application" traceback.
    EDGETUTOR_DEBUG=1 logs the traceback too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as err:
            log.error(
                "internal error on %s %s: %s: %s",
                scope.get("method"),
                one_line(str(scope.get("path")), 200),
                type(err).__name__,
                one_line(str(err), 300),
                exc_info=bool(os.environ.get("EDGETUTOR_DEBUG")),
            )
            if not started:
                await _error("internal error", 500)(scope, receive, send)


LOOPBACK = ("127.0.0.1", "::1", "localhost")


class SignInNeeded(HubError):
    """A page that needs a signed-in coordinator, asked for without one (pages: a redirect to
    /login; the report API: 401)."""

    def __init__(self) -> None:
        super().__init__("sign in to see the dashboard and reports (/login)", 401)


class Reader(NamedTuple):
    """Who is reading a dashboard page: their account (None on a hub without accounts, where
    only the hub machine may read), what they may see, and their session's tokens."""

    account: Account | None
    scope: Sites
    csrf: str | None = None
    token: str | None = None


def safe_next(target: str) -> str:
    """Where to go after signing in: a path on this hub, never another site ("//evil", "/\\x")."""
    if target.startswith("/") and not target.startswith(("//", "/\\")) and "\n" not in target:
        return target[:500]
    return "/"


async def _form(request: Request) -> dict[str, str]:
    """A small urlencoded form (first value of each field); larger than MAX_FORM is refused."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise HubError("form too large", 413)
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items()}


def make_app(
    db: HubDB,
    dashboard_anywhere: bool = False,
    per_address: Rate = DEFAULT_PER_ADDRESS,
    per_device: Rate = DEFAULT_PER_DEVICE,
    shared_limits: Path | None = None,
) -> Starlette:
    """The hub application over an open database (the CLI and the tests both build it here).

    The dashboard and the report API show trainees' names and scores. On a hub with coordinator
    accounts (accounts.py) they need a signed-in person, from any address, and show that person's
    scope. On a hub with none they answer only clients on this machine unless
    `dashboard_anywhere`. Devices' endpoints answer everyone: what they accept is signed.
    `shared_limits` is the folder of the rate-limit tables every worker shares (`serve`).
    """

    def buckets(rate: Rate, what: str, table: str) -> Buckets | SharedBuckets:
        if shared_limits is None:
            return Buckets(rate, what)
        return SharedBuckets(rate, what, shared_limits / table)

    by_address = buckets(per_address, "address", "address.table")
    by_device = buckets(per_device, "device", "device.table")
    sign_ins = buckets(SIGN_IN_RATE, "address", "sign-in.table")
    pruned = [0.0]  # when idempotency records were last pruned (monotonic seconds)
    ingest_slots = anyio.CapacityLimiter(INGEST_THREADS)

    def limit(request: Request, device_id: Any = None) -> None:
        by_address.take(request.client.host if request.client else "?")
        if isinstance(device_id, str):
            by_device.take(device_id[:100])

    def prune_due() -> bool:
        """True once every PRUNE_EVERY_S (the caller prunes; checked on the event loop)."""
        if time.monotonic() - pruned[0] < PRUNE_EVERY_S:
            return False
        pruned[0] = time.monotonic()
        return True

    def prune_now() -> None:
        db.prune_idempotency(IDEMPOTENCY_DAYS)
        prune_sessions(db)

    def address(request: Request) -> str:
        return request.client.host if request.client else ""

    def local_only(request: Request) -> None:
        if not dashboard_anywhere and address(request) not in LOOPBACK:
            raise HubError(
                "the dashboard and reports are served to this machine only "
                "(create coordinator accounts with `edgetutor hub user add`, or start the hub "
                "with --dashboard-from-anywhere on a network you trust)",
                403,
            )

    def reader(request: Request) -> Reader:
        """Who asks (blocking: call in the thread pool). Raises SignInNeeded or HubError."""
        if db.count_users() == 0:
            local_only(request)
            return Reader(None, EVERYTHING)
        token = request.cookies.get(SESSION_COOKIE, "")
        found = session_account(db, token)
        if found is None:
            raise SignInNeeded()
        account, csrf = found
        return Reader(account, scope_of(db, account), csrf, token)

    def seen(who: Reader, request: Request, action: str) -> None:
        """The audit line for a page, export or report read (blocking)."""
        query = request.url.query
        record(db, who.account, address(request), action, request.url.path + ("?" + query if query else ""))

    async def read(request: Request, action: str) -> Reader:
        who = await run_in_threadpool(reader, request)
        await run_in_threadpool(seen, who, request, action)
        return who

    async def ping(request: Request) -> Response:
        return JSONResponse(
            {"hub": "edgetutor", "version": __version__, "protocol": protocol.PROTOCOL_VERSION}
        )

    async def enroll_ep(request: Request) -> Response:
        limit(request)
        data, _ = await _json_body(request)
        if not isinstance(data, dict):
            raise HubError("enrollment request must be a JSON object", 400)

        def work() -> dict[str, Any]:
            device = enroll(
                db,
                token=data.get("token"),  # type: ignore[arg-type]
                device_id=data.get("device_id"),  # type: ignore[arg-type]
                public_key=data.get("public_key"),  # type: ignore[arg-type]
                label=data.get("label") if isinstance(data.get("label"), str) else None,
                proof=data.get("proof") if isinstance(data.get("proof"), str) else "",
                continues=data.get("continues"),
            )
            return {
                "device_id": device.id,
                "site": device.site,
                "acked_seq": device.acked_seq,
                "head": device.head,
            }

        return JSONResponse(await run_in_threadpool(work))

    async def events_ep(request: Request) -> Response:
        limit(request)
        body = await _body_bytes(request)
        key = request.headers.get("idempotency-key")
        prune = prune_due()

        def work() -> dict[str, Any]:
            # One trip to a worker thread per batch: pruning when due, parsing, the device's
            # limit and the ingest.
            if prune:
                prune_now()
            data = parse_json(body, "request body")
            if not isinstance(data, dict):
                raise HubError("a batch must be a JSON object with device_id and events", 400)
            limit_device = data.get("device_id")
            if isinstance(limit_device, str):
                by_device.take(limit_device[:100])
            idem = (key[:200], idempotency_hash(body)) if key else None
            return ingest(db, data.get("device_id"), data.get("events"), "http", idem, data.get("vouch"))

        return JSONResponse(await anyio.to_thread.run_sync(work, limiter=ingest_slots))

    async def ack_ep(request: Request) -> Response:
        device_id = request.path_params["device_id"]
        limit(request)

        def work() -> dict[str, Any]:
            device = db.device(device_id)
            if device is None:
                raise HubError(f"device {device_id} is not enrolled", 401)
            return {"acked_seq": device.acked_seq, "head": device.head, "revoked": device.revoked is not None}

        return JSONResponse(await run_in_threadpool(work))

    async def packs_ep(request: Request) -> Response:
        limit(request)
        return JSONResponse({"packs": await run_in_threadpool(catalogue, db)})

    async def pack_download(request: Request) -> Response:
        limit(request)
        digest = request.path_params["digest"]
        path = await run_in_threadpool(pack_file, db, digest)
        if path is None:
            return _error("no such pack", 404)
        return FileResponse(path, media_type="application/zip", filename=f"{digest}.etpack")

    async def report_ep(request: Request) -> Response:
        from .report import AXES, build_report

        who = await read(request, "report")
        by = request.query_params.get("by", "trainee")
        if by not in AXES:
            return _error(f"unknown report axis {by!r} (one of {', '.join(AXES)})", 400)
        return JSONResponse(await run_in_threadpool(build_report, db, by, who.scope))

    async def dashboard_ep(request: Request) -> Response:
        from .dashboard import render

        who = await read(request, "viewed")
        page = await run_in_threadpool(render, db, _filters(request), who.scope)
        return _html(page, who)

    def _filters(request: Request) -> Filters:
        try:
            return Filters.parse(request.query_params)
        except ValueError as err:
            raise HubError(str(err), 400) from None

    def _html(page: str, who: Reader | None = None, status: int = 200) -> Response:
        from .pages import account_bar

        if who is not None and who.account is not None and who.csrf is not None:
            # The signed-in person and a sign-out button, at the end of the page's header.
            page = page.replace("</header>", account_bar(who.account, who.csrf) + "</header>", 1)
        return HTMLResponse(
            page,
            status_code=status,
            headers={
                "Content-Security-Policy": CSP,
                "X-Content-Type-Options": "nosniff",
                # Names and scores: never kept by a shared browser's cache or a proxy.
                "Cache-Control": "no-store",
                "Referrer-Policy": "same-origin",
            },
        )

    async def trainee_ep(request: Request) -> Response:
        from .pages import NotFound, trainee_page

        who = await read(request, "viewed")
        site, name = request.query_params.get("site", ""), request.query_params.get("name", "")
        try:
            return _html(await run_in_threadpool(trainee_page, db, site, name, who.scope), who)
        except NotFound as err:
            raise HubError(str(err), 404) from None

    async def attempt_ep(request: Request) -> Response:
        from .pages import NotFound, attempt_page

        who = await read(request, "viewed")
        try:
            page = await run_in_threadpool(attempt_page, db, request.path_params["event_id"], who.scope)
            return _html(page, who)
        except NotFound as err:
            raise HubError(str(err), 404) from None

    async def export_ep(request: Request) -> Response:
        from .dashboard import attempts_csv
        from .report import overview

        who = await read(request, "exported")
        filters = _filters(request)
        data = await run_in_threadpool(overview, db, filters, who.scope)
        return Response(
            attempts_csv(data["items"]),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": 'attachment; filename="edgetutor-attempts.csv"',
                "Cache-Control": "no-store",
            },
        )

    # -- signing in and out -------------------------------------------------------------------
    def _cookie(response: Response, request: Request, name: str, value: str, max_age: int, path: str) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=path,
            httponly=True,
            samesite="strict",
            # Behind a TLS proxy (X-Forwarded-Proto from a trusted address) the cookie is https-only.
            secure=request.url.scheme == "https",
        )

    def _login_form(request: Request, error: str | None = None, status: int = 200) -> Response:
        import secrets

        from .pages import login_page

        check = secrets.token_urlsafe(24)
        target = safe_next(request.query_params.get("next", "/"))
        reply = _html(login_page(check, target, error), status=status)
        _cookie(reply, request, LOGIN_CSRF_COOKIE, check, 1800, "/login")
        return reply

    async def login_ep(request: Request) -> Response:
        if await run_in_threadpool(db.count_users) == 0:
            return RedirectResponse("/", 303)  # no accounts: nothing to sign in to
        if request.method == "GET":
            return _login_form(request)
        sign_ins.take(address(request))
        form = await _form(request)
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not expected or not hmac.compare_digest(expected, form.get("csrf", "")):
            return _login_form(request, "The form had expired: sign in again.", 400)
        found = await run_in_threadpool(
            sign_in, db, form.get("name", "").strip(), form.get("password", ""), address(request)
        )
        if found is None:
            return _login_form(request, "Wrong name or password.", 401)
        account, token, _ = found
        reply = RedirectResponse(safe_next(form.get("next", "/")), 303)
        _cookie(reply, request, SESSION_COOKIE, token, int(SESSION_HOURS * 3600), "/")
        reply.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return reply

    async def logout_ep(request: Request) -> Response:
        who = await run_in_threadpool(reader, request)
        form = await _form(request)
        if who.account is None or who.token is None or who.csrf is None:
            return RedirectResponse("/", 303)
        if not hmac.compare_digest(who.csrf, form.get("csrf", "")):
            raise HubError("sign-out refused: the form did not come from this hub's page", 403)
        await run_in_threadpool(sign_out, db, who.token, who.account, address(request))
        reply = RedirectResponse("/login", 303)
        reply.delete_cookie(SESSION_COOKIE, path="/")
        return reply

    async def localtime_js(request: Request) -> Response:
        from .pages import LOCALTIME_JS

        return Response(
            LOCALTIME_JS,
            media_type="text/javascript; charset=utf-8",
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "max-age=3600"},
        )

    async def on_hub_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HubError)
        client = request.client.host if request.client else "?"
        # One line, whatever the request held: a name with a newline cannot forge log lines.
        log.warning(
            "refused %s %s from %s (%d): %s",
            request.method,
            one_line(request.url.path, 200),
            client,
            exc.status,
            one_line(str(exc), 500),
        )
        if isinstance(exc, SignInNeeded) and not request.url.path.startswith(protocol.API):
            back = request.url.path + ("?" + request.url.query if request.url.query else "")
            return RedirectResponse("/login?" + urlencode({"next": back}), 303)
        reply = _error(str(exc), exc.status)
        if isinstance(exc, RateLimited):
            reply.headers["Retry-After"] = str(exc.retry_after)
        return reply

    async def robots(request: Request) -> Response:
        return PlainTextResponse("User-agent: *\nDisallow: /\n")

    api = protocol.API
    routes = [
        Route("/", dashboard_ep),
        Route("/trainee", trainee_ep),
        Route("/attempt/{event_id}", attempt_ep),
        Route("/export.csv", export_ep),
        Route("/login", login_ep, methods=["GET", "POST"]),
        Route("/logout", logout_ep, methods=["POST"]),
        Route("/static/localtime.js", localtime_js),
        Route("/robots.txt", robots),
        Route(f"{api}/ping", ping),
        Route(f"{api}/enroll", enroll_ep, methods=["POST"]),
        Route(f"{api}/events", events_ep, methods=["POST"]),
        Route(f"{api}/devices/{{device_id}}/ack", ack_ep),
        Route(f"{api}/packs", packs_ep),
        Route(f"{api}/packs/{{digest}}.etpack", pack_download),
        Route(f"{api}/report", report_ep),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={HubError: on_hub_error},
        middleware=[Middleware(OneLineErrors)],
    )


# A worker process started by `serve(..., workers=N)` reads what to open from here (uvicorn
# starts workers with "spawn": they import the app factory by name, nothing is inherited).
WORKER_DB_ENV = "EDGETUTOR_HUB_WORKER_DB"
WORKER_ANYWHERE_ENV = "EDGETUTOR_HUB_WORKER_ANYWHERE"
WORKER_RATES_ENV = "EDGETUTOR_HUB_WORKER_RATES"
WORKER_LIMITS_ENV = "EDGETUTOR_HUB_WORKER_LIMITS"
LIMIT_TABLES = ("address.table", "device.table", "sign-in.table")


def worker_app() -> Starlette:
    """The app of one worker process (uvicorn calls this factory in each worker)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    db = HubDB(os.environ[WORKER_DB_ENV])
    rates = os.environ.get(WORKER_RATES_ENV, "").split()
    per_address, per_device = (
        (Rate.parse(rates[0]), Rate.parse(rates[1]))
        if len(rates) == 2
        else (DEFAULT_PER_ADDRESS, DEFAULT_PER_DEVICE)
    )
    # the workers share one set of rate-limit tables: a limit is the hub's (docs/hub.md)
    shared = os.environ.get(WORKER_LIMITS_ENV)
    return make_app(
        db,
        os.environ.get(WORKER_ANYWHERE_ENV) == "1",
        per_address,
        per_device,
        Path(shared) if shared else None,
    )


def serve(
    db_target: str | Path,
    host: str,
    port: int,
    log_level: str = "warning",
    dashboard_anywhere: bool = False,
    per_address: Rate = DEFAULT_PER_ADDRESS,
    per_device: Rate = DEFAULT_PER_DEVICE,
    workers: int = 1,
) -> None:
    """Open the database (migrating it once, here), bind, print one line with the real address,
    then serve until stopped: in this process, or in `workers` processes sharing the socket.

    Several workers are safe on both engines: each batch is one transaction that locks its
    device (PostgreSQL: the device row; SQLite: the whole database), so two processes never
    both extend one chain. They only pay off on PostgreSQL, where writes run in parallel.
    """
    import uvicorn

    db = HubDB(db_target)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        db.close()
        raise HubError(f"cannot listen on {host}:{port}: {err.strerror or err}") from err
    sock.listen(2048)
    real_port = sock.getsockname()[1]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    shown = f"[{host}]" if ":" in host else host
    where = db.target
    if workers == 1:
        app: Any = make_app(db, dashboard_anywhere, per_address, per_device)
    else:
        db.close()  # each worker opens its own
        os.environ[WORKER_DB_ENV] = str(db_target)
        os.environ[WORKER_ANYWHERE_ENV] = "1" if dashboard_anywhere else "0"
        os.environ[WORKER_RATES_ENV] = (
            f"{per_address.per_second}/s:{per_address.burst} {per_device.per_second}/s:{per_device.burst}"
        )
        tables = Path(tempfile.mkdtemp(prefix="edgetutor-hub-limits-"))
        for name in LIMIT_TABLES:
            create_table(tables / name)
        os.environ[WORKER_LIMITS_ENV] = str(tables)
        app = "edgetutor.hub.server:worker_app"
    suffix = f", {workers} workers" if workers > 1 else ""
    print(f"EdgeTutor hub listening on http://{shown}:{real_port} (db {where}{suffix})", flush=True)
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        factory=workers > 1,
        workers=workers,
        # A client that opens a connection and sends nothing is dropped after this long.
        timeout_keep_alive=REQUEST_IDLE_S,
    )
    try:
        if workers == 1:
            uvicorn.Server(config).run(sockets=[sock])
        else:
            import inspect

            from uvicorn.supervisors import Multiprocess

            # uvicorn's supervisor took a `target` (the server's run) until recent versions.
            if "target" in inspect.signature(Multiprocess).parameters:
                supervisor = Multiprocess(config, target=uvicorn.Server(config).run, sockets=[sock])  # type: ignore[call-arg]
            else:
                supervisor = Multiprocess(config, sockets=[sock])
            supervisor.run()
    finally:
        db.close()
        if workers > 1:
            shutil.rmtree(os.environ.pop(WORKER_LIMITS_ENV), ignore_errors=True)
        sys.stdout.flush()
