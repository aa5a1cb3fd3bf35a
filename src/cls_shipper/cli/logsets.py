"""`cls-shipper logsets list|show|create|modify|delete`, over API 3.0's logset actions."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cls_shipper.cli.common import (
    AsJson,
    CredentialsDir,
    Endpoint,
    Params,
    Tags,
    Tz,
    fail,
    given,
    parse_params,
    parse_tags,
    render,
    render_one,
    session,
    shown_time,
    zone_named,
)

app = typer.Typer(no_args_is_help=True, help="Logsets: the containers of topics.")
LogsetId = Annotated[str, typer.Argument(help="The logset's id.")]
DEFAULT_ENDPOINT = "http://127.0.0.1:9400"


def _in_zone(item: dict[str, Any], tz: str | None) -> dict[str, Any]:
    return {**item, "CreateTime": shown_time(item.get("CreateTime"), zone_named(tz))}


def find(client: Any, logset_id: str) -> dict[str, Any]:
    found = client.action("DescribeLogsets", {"Filters": [{"Key": "logsetId",
                                                           "Values": [logset_id]}]})["Logsets"]
    if not found:
        raise fail(f"logset {logset_id!r} does not exist")
    return dict(found[0])


@app.command("list")
def list_logsets(
    name: Annotated[str | None, typer.Option(help="Names containing this.")] = None,
    tag_key: Annotated[str | None, typer.Option(help="Logsets with this tag key.")] = None,
    as_json: AsJson = False, tz: Tz = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT, data_dir: CredentialsDir = None,
) -> None:
    """List logsets (DescribeLogsets, every page)."""
    filters = ([{"Key": "logsetName", "Values": [name]}] if name else []) + (
        [{"Key": "tagKey", "Values": [tag_key]}] if tag_key else [])
    items: list[dict[str, Any]] = []
    with session(endpoint, data_dir) as client:
        while True:
            page = client.action("DescribeLogsets", {"Filters": filters, "Offset": len(items),
                                                     "Limit": 100})
            items += page["Logsets"]
            if not page["Logsets"] or len(items) >= page["TotalCount"]:
                break
    render([_in_zone(i, tz) for i in items], [
        ("LogsetId", lambda r: r["LogsetId"]), ("LogsetName", lambda r: r["LogsetName"]),
        ("TopicCount", lambda r: r["TopicCount"]), ("CreateTime", lambda r: r["CreateTime"]),
        ("Tags", lambda r: " ".join(f"{t['Key']}={t['Value']}" for t in r["Tags"]))], as_json)


@app.command("show")
def show(logset_id: LogsetId, as_json: AsJson = False, tz: Tz = None,
         endpoint: Endpoint = DEFAULT_ENDPOINT, data_dir: CredentialsDir = None) -> None:
    """Show one logset."""
    with session(endpoint, data_dir) as client:
        render_one(_in_zone(find(client, logset_id), tz), as_json)


@app.command("create")
def create(
    name: Annotated[str, typer.Option(help="The logset's name (unique).")],
    tag: Tags = None,
    logset_id: Annotated[str | None, typer.Option(help="A custom id (<name>-<APPID>).")] = None,
    params: Params = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT, data_dir: CredentialsDir = None,
) -> None:
    """Create a logset (CreateLogset) and print its id."""
    request = {**given(LogsetName=name, Tags=parse_tags(tag), LogsetId=logset_id),
               **parse_params(params)}
    with session(endpoint, data_dir) as client:
        print(client.action("CreateLogset", request)["LogsetId"])


@app.command("modify")
def modify(
    logset_id: LogsetId,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    tag: Tags = None, params: Params = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT, data_dir: CredentialsDir = None,
) -> None:
    """Rename a logset or replace its tags (ModifyLogset)."""
    request = {**given(LogsetId=logset_id, LogsetName=name, Tags=parse_tags(tag)),
               **parse_params(params)}
    with session(endpoint, data_dir) as client:
        client.action("ModifyLogset", request)
    print(f"logset {logset_id} modified")


@app.command("delete")
def delete(logset_id: LogsetId, endpoint: Endpoint = DEFAULT_ENDPOINT,
           data_dir: CredentialsDir = None) -> None:
    """Delete a logset without topics (DeleteLogset)."""
    with session(endpoint, data_dir) as client:
        client.action("DeleteLogset", {"LogsetId": logset_id})
    print(f"logset {logset_id} deleted")
