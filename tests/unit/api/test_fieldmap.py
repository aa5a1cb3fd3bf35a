"""Field maps: one table reads a request into the model and renders the model back."""

from __future__ import annotations

from datetime import UTC
from types import SimpleNamespace

from pydantic import BaseModel

from cls_shipper.api.fieldmap import LEGACY_TIME, Field, FieldMap, each, nested, wrapped
from cls_shipper.api.legacy.fields import CONTENT as LEGACY_CONTENT
from cls_shipper.api.v3.fields import CONTENT as V3_CONTENT
from cls_shipper.model.shipper import LEGACY_JSON, ContentInfo, CsvInfo, JsonInfo, ParquetKey

CSV = ContentInfo("csv", csv=CsvInfo(["a", "b"], "|", "'", "null", True))
PARQUET = ContentInfo("parquet", parquet=[ParquetKey("a", "int64", "")])
JSON = ContentInfo("json", json=JsonInfo(False, ["__TIMESTAMP__"], 1))


def test_what_is_rendered_reads_back_into_the_same_model() -> None:
    for content in (CSV, PARQUET, JSON):
        assert LEGACY_CONTENT.load(LEGACY_CONTENT.render(content, UTC)) == content
        assert V3_CONTENT.load(V3_CONTENT.render(content, UTC)) == content


def test_each_surface_names_the_fields_its_way() -> None:
    assert LEGACY_CONTENT.render(PARQUET, UTC) == {"format": "parquet", "parquet_info": {
        "parquet_key_info": [{"key_name": "a", "key_type": "int64",
                              "key_non_existing_field": ""}]}}
    rendered = V3_CONTENT.render(CSV, UTC)
    assert rendered["Format"] == "csv" and rendered["Json"] is None
    assert rendered["Csv"] == {"PrintKey": True, "Keys": ["a", "b"], "Delimiter": "|",
                               "EscapeChar": "'", "NonExistingField": "null"}


def test_legacy_hides_the_json_options_that_are_its_default() -> None:
    assert LEGACY_CONTENT.render(ContentInfo("json", json=LEGACY_JSON), UTC) == \
        {"format": "json"}
    assert LEGACY_CONTENT.render(JSON, UTC)["json_info"] == \
        {"enable_tag": False, "meta_fields": ["__TIMESTAMP__"], "json_type": 1}


class Csv(BaseModel):
    keys: list[str]  # a field named like Mapping.keys must not make the model look like one
    delimiter: str


def test_read_takes_only_given_fields_under_the_model_and_never_computed_ones() -> None:
    table: FieldMap[object] = FieldMap(fields=[
        Field("id"),
        Field("config.name", "name"),
        Field("config.csv", "csv", nested(FieldMap(make=dict, fields=[
            Field("keys"), Field("delimiter")]))),
        Field("config.codec", "compress", wrapped("format")),
        Field(lambda o: o.id * 2, "twice"),
        Field("created_ms", "created", LEGACY_TIME),
    ])
    got = table.read({"id": 1, "name": "n", "twice": 4, "compress": {"format": "gzip"},
                      "csv": Csv(keys=["k"], delimiter=",")}, under="config")
    assert got == {"name": "n", "codec": "gzip", "csv": {"keys": ["k"], "delimiter": ","}}
    assert table.read({"id": 1, "name": "n"}) == {"id": 1}


def test_render_follows_the_table_order_paths_and_converters() -> None:
    table: FieldMap[object] = FieldMap(fields=[
        Field("id"),
        Field(lambda o: o.id * 2, "twice"),
        Field("config.rules", "rules", each(wrapped("key"))),
        Field("config.missing", "gone", omit=lambda v: v is None),
        Field("created_ms", "created", LEGACY_TIME),
        Field("ended_ms", "ended", LEGACY_TIME),
    ])
    obj = SimpleNamespace(id=2, created_ms=0, ended_ms=None,
                          config=SimpleNamespace(rules=["a", "b"], missing=None))
    got = table.render(obj, UTC)
    assert list(got) == ["id", "twice", "rules", "created", "ended"]
    assert got == {"id": 2, "twice": 4, "rules": [{"key": "a"}, {"key": "b"}],
                   "created": "1970-01-01 00:00:00", "ended": ""}
