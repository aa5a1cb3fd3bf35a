"""The console's routes: sign-in, the overview, a shipper's page, a task's page, the forms,
and the JSON fragments the pages refresh themselves with. Each handler reads the request,
calls the same service functions the APIs call, and renders; no rule lives here."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from cls_shipper.api.console import forms, render, timeline
from cls_shipper.api.console.render import page
from cls_shipper.api.console.session import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    PATH,
    PRE_COOKIE,
    clear_cookie,
    csrf_refused,
    pre_token,
    pre_token_ok,
    set_cookie,
    signed_in,
)
from cls_shipper.api.http import context, run
from cls_shipper.errors import Kinds, ServiceError
from cls_shipper.model.shipper import (
    COMPRESS_FORMATS,
    CONTENT_FORMATS,
    META_FIELDS,
    PARQUET_TYPES,
    STORAGE_TYPES,
    ShipperConfig,
)
from cls_shipper.service import audit as audit_service
from cls_shipper.service import (
    consumers,
    logsets,
    overview,
    sessions,
    shippers,
    tasks,
    topics,
)
from cls_shipper.service import coverage as coverage_service
from cls_shipper.service.sessions import Session
from cls_shipper.service.shipper_rules import MAX_FILTER_RULES, defaults
from cls_shipper.timefmt import now_ms


def _redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def _safe_next(target: str) -> str:
    """Only a path of the console: never another site."""
    return target if target.startswith(PATH + "/") and not target.startswith("//") \
        else PATH + "/"


# ---- signing in and out -------------------------------------------------------------------

async def sign_in_page(request: Request) -> Response:
    return _sign_in_form(request, "", "", 200)


def _sign_in_form(request: Request, secret_id: str, error: str, status: int) -> Response:
    token = pre_token(request)
    response = page(request, "signin.html", status, secret_id=secret_id, error=error,
                    csrf=token, next=_safe_next(request.query_params.get("next", "")))
    set_cookie(request, response, PRE_COOKIE, token, None)
    return response


async def sign_in(request: Request) -> Response:
    form = await forms.read_form(request)
    if not pre_token_ok(request, form.get(CSRF_FIELD, "")):
        return csrf_refused()
    secret_id = form.get("secret_id", "").strip()
    try:
        token, _ = await run(sessions.sign_in, context(request), secret_id,
                             form.get("secret_key", ""))
    except ServiceError as exc:
        return _sign_in_form(request, secret_id, exc.message, 401)
    response = _redirect(_safe_next(form.get("next", "")))
    set_cookie(request, response, COOKIE, token,
               context(request).settings.console_session_seconds)
    clear_cookie(response, PRE_COOKIE)
    return response


async def _checked_form(request: Request, session: Session) -> forms.Form | None:
    form = await forms.read_form(request)
    sent = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, "")
    return form if sessions.csrf_ok(session, sent) else None


@signed_in
async def sign_out(request: Request, session: Session) -> Response:
    if await _checked_form(request, session) is None:
        return csrf_refused()
    await run(sessions.sign_out, context(request), request.cookies.get(COOKIE, ""))
    response = _redirect(f"{PATH}/signin")
    clear_cookie(response, COOKIE)
    return response


# ---- the overview -------------------------------------------------------------------------

def _overview_values(request: Request) -> dict[str, Any]:
    ctx = context(request)
    found, _ = shippers.search(ctx, shippers.ShipperQuery(limit=1000))
    return {"logsets": logsets.list_all(ctx), "topics": topics.list_topics(ctx),
            "rates": overview.records_last_minute(ctx), "shippers": found,
            "groups": consumers.group_states_for(ctx), "now": now_ms()}


@signed_in
async def overview_page(request: Request, session: Session) -> Response:
    values = await run(_overview_values, request)
    return page(request, "overview.html", session=session,
                notice=request.query_params.get("notice", "")[:300], **values)


@signed_in
async def overview_json(request: Request, session: Session) -> Response:
    values = await run(_overview_values, request)
    return JSONResponse({"html": {
        "topics-body": render.fragment(request, "overview_topics.html", **values),
        "shippers-body": render.fragment(request, "overview_shippers.html", **values),
        "groups-body": render.fragment(request, "overview_groups.html", **values)}})


# ---- a shipper's page ---------------------------------------------------------------------

@dataclasses.dataclass
class RangeQuery:
    span: str
    until_ms: int  # 0: now, and the page follows it live
    status: str
    from_ms: int
    to_ms: int
    page: int
    audit: bool

    @property
    def end_ms(self) -> int:
        return self.until_ms or now_ms()

    @property
    def start_ms(self) -> int:
        return self.end_ms - timeline.SPANS[self.span]

    def link(self, **changes: Any) -> str:
        query = dataclasses.replace(self, **changes)
        params = {"span": query.span}
        if query.until_ms:
            params["until"] = str(query.until_ms)
        if query.status:
            params["status"] = query.status
        if query.from_ms:
            params["from"] = str(query.from_ms)
        if query.to_ms:
            params["to"] = str(query.to_ms)
        if query.page > 1:
            params["page"] = str(query.page)
        if query.audit:
            params["audit"] = "1"
        return "?" + urlencode(params)


def _range_query(request: Request) -> RangeQuery:
    params = request.query_params
    zone = context(request).zone

    def ms(name: str) -> int:
        value = params.get(name, "")
        if value.isdigit():
            return int(value)
        return forms.as_time(value, zone, name)

    span = params.get("span", "1h")
    status = params.get("status", "")
    page_text = params.get("page", "1")
    return RangeQuery(span if span in timeline.SPANS else "1h", ms("until"),
                      status if status in timeline.STATUS_CODE.values() or status in
                      ("success", "failed", "wait", "running") else "",
                      ms("from"), ms("to"), int(page_text) if page_text.isdigit() else 1,
                      params.get("audit") == "1")


def _shipper_values(request: Request, shipper_id: str, query: RangeQuery) -> dict[str, Any]:
    ctx = context(request)
    found = coverage_service.coverage(ctx, shipper_id, query.start_ms, query.end_ms)
    report = None
    audit_error = ""
    if query.audit:
        try:
            report = audit_service.audit(ctx, ctx.sink(), shipper_id, query.start_ms,
                                         query.end_ms)
        except ServiceError as exc:
            audit_error = exc.message
    view = timeline.build(found, query.status, query.from_ms, query.to_ms, query.page)
    view.details = coverage_service.details(ctx, shipper_id, view.rows)
    topic = topics.get(ctx, found.shipper.config.topic_id)
    return {"shipper": found.shipper, "topic": topic, "view": view, "query": query,
            "strip": timeline.strip(found, report), "report": report,
            "audit_error": audit_error, "spans": list(timeline.SPANS),
            "now": now_ms()}


async def _shipper_or_error(request: Request, session: Session,
                            shipper_id: str, query: RangeQuery, **extra: Any) -> Response:
    try:
        values = await run(_shipper_values, request, shipper_id, query)
    except ServiceError as exc:
        if exc.kind is Kinds.SHIPPER_NOT_EXIST:
            return page(request, "error.html", 404, session=session, message=exc.message)
        if query.span != "1h" or query.until_ms:
            # A range the service refuses (too many windows): show the hour instead, and why.
            return await _shipper_or_error(
                request, session, shipper_id,
                dataclasses.replace(query, span="1h", until_ms=0, page=1), notice=exc.message)
        raise
    return page(request, "shipper.html", session=session, **values, **extra)


@signed_in
async def shipper_page(request: Request, session: Session) -> Response:
    shipper_id = request.path_params["shipper_id"]
    notice = request.query_params.get("notice", "")[:300]
    return await _shipper_or_error(request, session, shipper_id, _range_query(request),
                                   notice=notice)


@signed_in
async def shipper_json(request: Request, session: Session) -> Response:
    shipper_id = request.path_params["shipper_id"]
    try:
        values = await run(_shipper_values, request, shipper_id, _range_query(request))
    except ServiceError as exc:
        return JSONResponse({"error": exc.message}, status_code=exc.kind.status)
    return JSONResponse({"strip": values["strip"], "html": {
        "shipper-state": render.fragment(request, "shipper_state.html", session=session,
                                         **values),
        "task-rows": render.fragment(request, "shipper_rows.html", **values)}})


@signed_in
async def window_redirect(request: Request, session: Session) -> Response:
    """The strip's click: the task of the window starting at `start_ms`."""
    shipper_id = request.path_params["shipper_id"]
    start = int(request.path_params["start_ms"])
    found = await run(coverage_service.coverage, context(request), shipper_id, start,
                      start + 1)
    if not found.windows:
        return page(request, "error.html", 404, session=session,
                    message="no task covers that window (yet)")
    return _redirect(f"{PATH}/shippers/{shipper_id}/tasks/{found.windows[0].task_id}")


async def _shipper_action(request: Request, session: Session, action: str) -> Response:
    form = await _checked_form(request, session)
    if form is None:
        return csrf_refused()
    ctx = context(request)
    shipper_id = request.path_params["shipper_id"]
    back = form.get("back", "")
    target = f"{PATH}/shippers/{shipper_id}" + (back if back.startswith("?") else "")
    try:
        if action == "retry":
            start, end = int(form.get("start_ms", "0")), int(form.get("end_ms", "0"))
            count = await run(coverage_service.retry_failed_in, ctx, shipper_id, start, end,
                              form.get("reload_config") == "on")
            notice = f"{count} failed window{'s' if count != 1 else ''} queued again"
        else:
            await run(shippers.modify, ctx, shipper_id, "v3", {},
                      effective=action == "resume")
            notice = "shipping resumed" if action == "resume" else "shipping paused"
    except (ServiceError, ValueError) as exc:
        notice = getattr(exc, "message", str(exc))
    sep = "&" if "?" in target else "?"
    return _redirect(target + sep + urlencode({"notice": notice}))


@signed_in
async def shipper_retry(request: Request, session: Session) -> Response:
    return await _shipper_action(request, session, "retry")


@signed_in
async def shipper_pause(request: Request, session: Session) -> Response:
    return await _shipper_action(request, session, "pause")


@signed_in
async def shipper_resume(request: Request, session: Session) -> Response:
    return await _shipper_action(request, session, "resume")


# ---- a task's page ------------------------------------------------------------------------

def _task_values(request: Request) -> dict[str, Any]:
    ctx = context(request)
    shipper_id = request.path_params["shipper_id"]
    task = tasks.get_task(ctx, shipper_id, request.path_params["task_id"])
    return {"task": task, "shipper": shippers.get(ctx, shipper_id), "now": now_ms()}


@signed_in
async def task_page(request: Request, session: Session) -> Response:
    try:
        values = await run(_task_values, request)
    except ServiceError as exc:
        return page(request, "error.html", exc.kind.status, session=session,
                    message=exc.message)
    return page(request, "task.html", session=session,
                notice=request.query_params.get("notice", "")[:300], **values)


@signed_in
async def task_json(request: Request, session: Session) -> Response:
    try:
        values = await run(_task_values, request)
    except ServiceError as exc:
        return JSONResponse({"error": exc.message}, status_code=exc.kind.status)
    return JSONResponse({"html": {"task-body": render.fragment(request, "task_body.html",
                                                               session=session, **values)}})


@signed_in
async def task_retry(request: Request, session: Session) -> Response:
    form = await _checked_form(request, session)
    if form is None:
        return csrf_refused()
    shipper_id, task_id = request.path_params["shipper_id"], request.path_params["task_id"]
    try:
        await run(tasks.retry, context(request), shipper_id, task_id,
                  form.get("reload_config") == "on")
        notice = "queued again"
    except ServiceError as exc:
        notice = exc.message
    return _redirect(f"{PATH}/shippers/{shipper_id}/tasks/{task_id}?"
                     + urlencode({"notice": notice}))


# ---- forms --------------------------------------------------------------------------------

def _form_page(request: Request, session: Session, template: str, values: dict[str, Any],
               errors: forms.FormErrors | None = None, **extra: Any) -> Response:
    return page(request, template, 400 if errors else 200, session=session, values=values,
                errors=errors or forms.FormErrors(), **extra)


LOGSET_FIELDS = {"logset_name", "period", "tags"}


@signed_in
async def logset_form(request: Request, session: Session) -> Response:
    logset_id = request.path_params.get("logset_id")
    values: dict[str, Any] = {"logset_name": "", "period": logsets.DEFAULT_PERIOD_DAYS,
                              "tags": ""}
    if logset_id:
        try:
            found = await run(logsets.get, context(request), logset_id)
        except ServiceError as exc:
            return page(request, "error.html", 404, session=session, message=exc.message)
        values = {"logset_name": found.logset_name, "period": found.period,
                  "tags": forms.tags_text(found.tags)}
    if request.method == "GET":
        return _form_page(request, session, "logset_form.html", values, logset_id=logset_id)
    form = await _checked_form(request, session)
    if form is None:
        return csrf_refused()
    ctx = context(request)
    name, period = form.get("logset_name", ""), forms.as_int(form.get("period", ""))
    tags = forms.tags(form.get("tags", ""))
    try:
        if logset_id:
            await run(lambda: logsets.modify(ctx, logset_id, name=name, period=period,
                                             tags=tags))
        else:
            await run(lambda: logsets.create(ctx, name, period, tags=tags))
    except ServiceError as exc:
        return _form_page(request, session, "logset_form.html", dict(form),
                          forms.place(exc, LOGSET_FIELDS), logset_id=logset_id)
    return _redirect(f"{PATH}/")


TOPIC_FIELDS = {"logset_id", "topic_name", "partition_count", "path", "wild_path",
                "log_type", "extract_rule", "collection", "period", "tags",
                *forms.TOPIC_OPTION_DEFAULTS}


def _topic_values(found: topics.Topic) -> dict[str, Any]:
    return {**dataclasses.asdict(found), **forms.topic_option_values(found.options),
            "extract_rule": forms.extract_rule_text(found.extract_rule),
            "tags": forms.tags_text(found.tags),
            "period": found.period if found.own_period else ""}


@signed_in
async def topic_form(request: Request, session: Session) -> Response:
    ctx = context(request)
    topic_id = request.path_params.get("topic_id")
    values: dict[str, Any] = {"logset_id": request.query_params.get("logset_id", ""),
                              "topic_name": "", "partition_count": 1, "path": "",
                              "wild_path": "", "log_type": "minimalist_log",
                              "extract_rule": "", "collection": True, "period": "",
                              **forms.TOPIC_OPTION_DEFAULTS}
    if topic_id:
        try:
            found = await run(topics.get, ctx, topic_id)
        except ServiceError as exc:
            return page(request, "error.html", 404, session=session, message=exc.message)
        values = _topic_values(found)
    extra: dict[str, Any] = {"topic_id": topic_id, "log_types": topics.LOG_TYPES,
             "logset_options": [(item.logset_id, item.logset_name)
                                for item in await run(logsets.list_all, ctx)]}
    if request.method == "GET":
        return _form_page(request, session, "topic_form.html", values, **extra)
    form = await _checked_form(request, session)
    if form is None:
        return csrf_refused()
    try:
        period = forms.as_int(form["period"]) if form.get("period", "").strip() else None
        options = forms.topic_options(form, values if topic_id else None)
        fields: dict[str, Any] = {
            "topic_name": form.get("topic_name", ""), "path": form.get("path", ""),
            "wild_path": form.get("wild_path", ""), "log_type": form.get("log_type", ""),
            "extract_rule": forms.extract_rule(form.get("extract_rule", "")),
            "collection": form.get("collection") == "on", "period": period,
            "tags": forms.tags(form.get("tags", "")), "options": options,
            "partition_count": forms.as_int(form.get("partition_count", "1"))}
        if topic_id:
            await run(lambda: topics.modify(ctx, topic_id, **fields))
        else:
            await run(lambda: topics.create(ctx, form.get("logset_id", ""), **fields))
    except ServiceError as exc:
        shown = {**forms.topic_form_values(form),
                 "logset_id": values["logset_id"] if topic_id else form.get("logset_id", "")}
        return _form_page(request, session, "topic_form.html", shown,
                          forms.place(exc, TOPIC_FIELDS), **extra)
    return _redirect(f"{PATH}/")


SHIPPER_FIELDS = {"topic_id", "bucket", "prefix", "shipper_name", "interval", "max_size",
                  "partition", "compress", "content_format", "csv_keys", "csv_delimiter",
                  "csv_escape_char", "csv_non_existing_field", "json_meta_fields",
                  "json_type", "json_enable_tag", "parquet_keys", "filter_rules",
                  "filename_mode", "storage_type", "role_arn", "external_id", "time_zone",
                  "dsl_filter", "start_time", "end_time"}


def _shipper_form_extra(request: Request, shipper_id: str | None) -> dict[str, Any]:
    return {"shipper_id": shipper_id,
            "topic_options": [(t.topic_id, f"{t.topic_name} ({t.topic_id})")
                              for t in topics.list_topics(context(request))],
            "compress_formats": COMPRESS_FORMATS, "content_formats": CONTENT_FORMATS,
            "meta_fields": META_FIELDS, "parquet_types": PARQUET_TYPES,
            "storage_types": STORAGE_TYPES, "filter_slots": range(1, MAX_FILTER_RULES + 1),
            "min_interval": context(request).settings.min_interval}


@signed_in
async def shipper_form(request: Request, session: Session) -> Response:
    ctx = context(request)
    shipper_id = request.path_params.get("shipper_id")
    extra = await run(_shipper_form_extra, request, shipper_id)
    if shipper_id:
        try:
            found = await run(shippers.get, ctx, shipper_id)
        except ServiceError as exc:
            return page(request, "error.html", 404, session=session, message=exc.message)
        values = {**forms.shipper_fields(found.config), "effective": found.effective}
    else:
        start = defaults("v3")
        values = {**forms.shipper_fields(ShipperConfig(
            topic_id=request.query_params.get("topic_id", ""), bucket="", prefix="",
            shipper_name="", **start)), "effective": True}
        if ctx.settings.min_interval < 300:
            values["interval"] = max(ctx.settings.min_interval, 60)
    if request.method == "GET":
        return _form_page(request, session, "shipper_form.html", values, **extra)
    form = await _checked_form(request, session)
    if form is None:
        return csrf_refused()
    try:
        if shipper_id:
            config = forms.shipper_config(form, values["topic_id"])
            changes = {f.name: getattr(config, f.name)
                       for f in dataclasses.fields(ShipperConfig) if f.name != "topic_id"}
            await run(shippers.modify, ctx, shipper_id, "v3", changes,
                      effective=form.get("effective") == "on")
        else:
            config = forms.shipper_config(form, form.get("topic_id", ""))
            start_ms = forms.as_time(form.get("start_time", ""), ctx.zone, "StartTime")
            end_ms = forms.as_time(form.get("end_time", ""), ctx.zone, "EndTime")
            shipper_id = await run(lambda: shippers.create(ctx, config, "v3",
                                                           start_ms=start_ms, end_ms=end_ms))
    except ServiceError as exc:
        return _form_page(request, session, "shipper_form.html",
                          forms.shipper_form_values(form), forms.place(exc, SHIPPER_FIELDS),
                          **extra)
    return _redirect(f"{PATH}/shippers/{shipper_id}")


# ---- deleting, after a confirmation step ------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Deletable:
    what: str
    param: str
    consequence: str
    name_of: Callable[[Any, str], str]  # (ctx, id) -> the name shown; raises if none
    delete: Callable[[Any, str], None]
    edit: str  # where Cancel goes, by id


_DELETABLE = {
    "logset": _Deletable("logset", "logset_id", "a logset must hold no topic to be deleted.",
                         lambda ctx, i: logsets.get(ctx, i).logset_name,
                         logsets.delete_logset, PATH + "/logsets/{}/edit"),
    "topic": _Deletable("topic", "topic_id", "its stored logs are deleted with it; a topic "
                        "must have no shipper to be deleted.",
                        lambda ctx, i: topics.get(ctx, i).topic_name,
                        topics.delete_topic, PATH + "/topics/{}/edit"),
    "shipper": _Deletable("shipper", "shipper_id", "its tasks and their history are deleted "
                          "with it; what it shipped stays in the bucket.",
                          lambda ctx, i: shippers.get(ctx, i).config.shipper_name,
                          shippers.delete_shipper, PATH + "/shippers/{}"),
}


async def _delete(request: Request, session: Session, kind: str) -> Response:
    item = _DELETABLE[kind]
    ctx = context(request)
    item_id = request.path_params[item.param]
    try:
        name = await run(item.name_of, ctx, item_id)
    except ServiceError as exc:
        return page(request, "error.html", 404, session=session, message=exc.message)
    shown = {"what": item.what, "name": name, "item_id": item_id,
             "consequence": item.consequence, "back": item.edit.format(item_id)}
    if request.method == "GET":
        return page(request, "confirm_delete.html", session=session, error="", **shown)
    if await _checked_form(request, session) is None:
        return csrf_refused()
    try:
        await run(item.delete, ctx, item_id)
    except ServiceError as exc:
        # The service's refusal (a logset with topics, a topic with shippers), where the
        # user confirmed.
        return page(request, "confirm_delete.html", exc.kind.status, session=session,
                    error=exc.message, **shown)
    return _redirect(f"{PATH}/?" + urlencode({"notice": f"{item.what} {name!r} deleted"}))


@signed_in
async def logset_delete(request: Request, session: Session) -> Response:
    return await _delete(request, session, "logset")


@signed_in
async def topic_delete(request: Request, session: Session) -> Response:
    return await _delete(request, session, "topic")


@signed_in
async def shipper_delete(request: Request, session: Session) -> Response:
    return await _delete(request, session, "shipper")


ROUTES = [
    Route("/", overview_page),
    Route("/overview.json", overview_json),
    Route("/signin", sign_in_page, methods=["GET"]),
    Route("/signin", sign_in, methods=["POST"]),
    Route("/signout", sign_out, methods=["POST"]),
    Route("/logsets/new", logset_form, methods=["GET", "POST"]),
    Route("/logsets/{logset_id}/edit", logset_form, methods=["GET", "POST"]),
    Route("/logsets/{logset_id}/delete", logset_delete, methods=["GET", "POST"]),
    Route("/topics/{topic_id}/delete", topic_delete, methods=["GET", "POST"]),
    Route("/shippers/{shipper_id}/delete", shipper_delete, methods=["GET", "POST"]),
    Route("/topics/new", topic_form, methods=["GET", "POST"]),
    Route("/topics/{topic_id}/edit", topic_form, methods=["GET", "POST"]),
    Route("/shippers/new", shipper_form, methods=["GET", "POST"]),
    Route("/shippers/{shipper_id}/edit", shipper_form, methods=["GET", "POST"]),
    Route("/shippers/{shipper_id}", shipper_page),
    Route("/shippers/{shipper_id}/timeline.json", shipper_json),
    Route("/shippers/{shipper_id}/windows/{start_ms:int}", window_redirect),
    Route("/shippers/{shipper_id}/retry", shipper_retry, methods=["POST"]),
    Route("/shippers/{shipper_id}/pause", shipper_pause, methods=["POST"]),
    Route("/shippers/{shipper_id}/resume", shipper_resume, methods=["POST"]),
    Route("/shippers/{shipper_id}/tasks/{task_id}", task_page),
    Route("/shippers/{shipper_id}/tasks/{task_id}/task.json", task_json),
    Route("/shippers/{shipper_id}/tasks/{task_id}/retry", task_retry, methods=["POST"]),
    Mount("/static", StaticFiles(directory=render.HERE / "static"), name="console-static"),
]
