"""Validation of raw Kafka records in Spark SQL, derived from the ticket contract.

`classify(df)` takes a DataFrame shaped like the Kafka source (key, value, topic,
partition, offset, timestamp) and adds `reason` (NULL for a valid ticket) and the
typed ticket columns (NULL for a rejected record). The checks, their order and their reasons are those of
`core.contract.reject_reason`, the pure-Python twin; no Python UDF runs, so the
whole validation stays in the JVM.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from core.contract import (
    BLANK_CHARACTERS,
    CREATED_AT_FORMAT_SPARK,
    CREATED_AT_PATTERN,
    CREATED_AT_RANGE,
    ESCAPED_BACKSLASH,
    FIELD_NAMES,
    FIELDS,
    LINEAGE_COLUMNS,
    LINEAGE_NAMES,
    LONE_SURROGATE_ESCAPE,
    MAX_RAW_BYTES,
    QUOTE_CHARS,
    QUOTE_UNSAFE,
    REASONS,
    TYPE_TEAMS,
    Field,
    Reason,
)

__all__ = ["TICKET_COLUMNS", "classify"]

TICKET_COLUMNS = (*FIELD_NAMES, "team")


def _reason(reason: Reason, field: str = "", detail: Column | None = None) -> Column:
    """reason.text(field, detail) in Spark, `detail` being a column of the record."""
    if detail is None:
        return F.lit(reason.text(field))
    before, after = reason.around_detail(field)
    return F.concat(*([F.lit(before)] if before else []), detail, *([F.lit(after)] if after else []))


def _matches_whole(text: Column, pattern: str) -> Column:
    """Whether the whole text matches (Java's "$" would also match before a final \\r)."""
    return text.rlike(f"\\A(?:{pattern})\\z")


def _quote(text: Column) -> Column:
    """core.contract.quote: the first QUOTE_CHARS characters, controls as "?"."""
    return F.regexp_replace(F.substring(text, 1, QUOTE_CHARS), QUOTE_UNSAFE, "?")


def _has_lone_surrogate(text: Column) -> Column:
    """core.contract._has_lone_surrogate, on the record's text."""
    unescaped = F.regexp_replace(text, ESCAPED_BACKSLASH, "")
    return text.contains("\\u") & unescaped.rlike(LONE_SURROGATE_ESCAPE)


def _micros(instant) -> int:
    return (instant - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _field_rules(field: Field, kind: Column, text: Column) -> list[tuple[Column, Column]]:
    """(condition, reason) pairs for one field, in contract order; `kind` is its JSON type."""
    rules = [
        (kind == "VOID", _reason(REASONS.null_field, field.name)),
        (kind != "STRING", _reason(REASONS.wrong_type, field.name)),
        (text.contains("\x00"), _reason(REASONS.nul_character, field.name)),
    ]
    if field.max_chars is not None:
        rules.append((F.char_length(text) > field.max_chars, _reason(REASONS.too_long, field.name)))
    if field.name == "request":
        rules.append((F.btrim(text, F.lit(BLANK_CHARACTERS)) == "", _reason(REASONS.empty_request)))
    if field.allowed is not None:
        rules.append((~text.isin(*field.allowed), _reason(REASONS.unknown_value, field.name, _quote(text))))
    if field.is_timestamp:
        bad = ~_matches_whole(text, CREATED_AT_PATTERN) | _to_timestamp(text).isNull()
        rules.append((bad, _reason(REASONS.bad_timestamp, field.name)))
    if field.pattern is not None:
        rules.append((~_matches_whole(text, field.pattern), _reason(REASONS.bad_format, field.name)))
    return rules


def _to_timestamp(text: Column) -> Column:
    """The instant of a created_at text; NULL when it does not parse or lies outside
    CREATED_AT_RANGE (Spark parses year 0, which Python and PostgreSQL refuse)."""
    instant = F.try_to_timestamp(text, F.lit(CREATED_AT_FORMAT_SPARK))
    earliest, latest = (_micros(bound) for bound in CREATED_AT_RANGE)
    return F.when(F.unix_micros(instant).between(earliest, latest), instant)


def _first_match(rules: list[tuple[Column, Column]]) -> Column:
    """CASE WHEN c1 THEN r1 WHEN c2 THEN r2 ... END; conditions short-circuit in order."""
    expr = F.when(rules[0][0], rules[0][1])
    for condition, reason in rules[1:]:
        expr = expr.when(condition, reason)
    return expr


def classify(kafka_df: DataFrame) -> DataFrame:
    """Add `reason` (NULL when valid), the ticket columns, `team` and the lineage columns.

    Each record is parsed once: the stages below compute the JSON, then its top-level
    map, then each field's value and type as columns, so that the CASE of rules only
    reads columns (Spark does not inline an expensive expression used several times).
    The columns are built once per process: building them anew took ~0.3 s per batch.
    """
    for stage in _stages():
        kafka_df = kafka_df.select(*stage)
    return kafka_df


def _parse_strictly(text: Column) -> Column:
    """The JSON value of `text` as a variant; NULL unless `text` is exactly one JSON value.

    Spark's parser stops after the first value and ignores what follows (`{...} junk`
    would pass), where Python's json.loads says "Extra data". So the text is parsed
    inside an array, followed by a sentinel: the value counts only when the array has
    exactly two elements and the second is the sentinel. The sentinel is a hash of the
    record, so a record cannot contain its own sentinel by chance.
    """
    sentinel = F.xxhash64(text)
    wrapped = F.try_parse_json(F.concat(F.lit("["), text, F.lit("\n,"), sentinel.cast("string"), F.lit("]")))
    second = F.try_variant_get(wrapped, "$[1]", "bigint")
    whole = (second == sentinel) & F.try_variant_get(wrapped, "$[2]", "variant").isNull()
    return F.when(whole, F.try_variant_get(wrapped, "$[0]", "variant"))


@cache
def _stages() -> tuple[tuple[Column | str, ...], ...]:
    """The select lists of classify, in order (Columns are not bound to a DataFrame)."""
    parse = (
        F.col("key").alias("raw_key"),
        F.col("value").alias("raw_value"),
        *[F.col(c.source).alias(c.name) for c in LINEAGE_COLUMNS],
        _parse_strictly(F.col("value").cast("string")).alias("_json"),
    )
    to_map = ("*", F.expr("try_variant_get(_json, '$', 'map<string,variant>')").alias("_map"))
    to_values = (
        "*",
        F.map_keys("_map").alias("_keys"),
        *[F.col("_map")[f.name].alias(f"_v_{f.name}") for f in FIELDS],
    )
    to_texts = (
        "*",
        *[F.schema_of_variant(f"_v_{f.name}").alias(f"_t_{f.name}") for f in FIELDS],
        *[F.expr(f"try_variant_get(_v_{f.name}, '$', 'string')").alias(f"_s_{f.name}") for f in FIELDS],
    )
    raw = {f.name: F.col(f"_v_{f.name}") for f in FIELDS}
    kind = {f.name: F.col(f"_t_{f.name}") for f in FIELDS}
    text = {f.name: F.col(f"_s_{f.name}") for f in FIELDS}
    unexpected = F.array_except(F.col("_keys"), F.array(*[F.lit(n) for n in FIELD_NAMES]))
    rules: list[tuple[Column, Column]] = [
        (F.col("raw_value").isNull(), _reason(REASONS.tombstone)),
        (F.octet_length("raw_value") == 0, _reason(REASONS.empty)),
        (
            F.octet_length("raw_value") > MAX_RAW_BYTES,
            _reason(REASONS.too_large, detail=F.octet_length("raw_value")),
        ),
        (~F.is_valid_utf8(F.col("raw_value").cast("string")), _reason(REASONS.invalid_utf8)),
        (_has_lone_surrogate(F.col("raw_value").cast("string")), _reason(REASONS.lone_surrogate)),
        (F.col("_json").isNull(), _reason(REASONS.not_json)),
        (F.col("_map").isNull(), _reason(REASONS.not_object)),
        *[(raw[f.name].isNull(), _reason(REASONS.missing_field, f.name)) for f in FIELDS],
        (F.size(unexpected) > 0, _reason(REASONS.unexpected_field, detail=_quote(F.array_min(unexpected)))),
    ]
    for field in FIELDS:
        rules.extend(_field_rules(field, kind[field.name], text[field.name]))
    team = F.when(F.lit(False), F.lit(None))
    for ticket_type, team_name in TYPE_TEAMS.items():
        team = team.when(text["type"] == ticket_type.value, F.lit(team_name))
    ticket_columns = [
        (_to_timestamp(text[f.name]) if f.is_timestamp else text[f.name]).alias(f.name) for f in FIELDS
    ]
    verdict = (
        _first_match(rules).alias("reason"),
        *ticket_columns,
        team.alias("team"),
        *LINEAGE_NAMES,
        "raw_key",
        "raw_value",
    )
    # A rejected record keeps only its reason and raw bytes: its field texts could be as
    # large as the record, and the rows handed to the sinks are bounded by the contract.
    valid = F.col("reason").isNull()
    bounded = (
        "reason",
        *[F.when(valid, F.col(name)).alias(name) for name in TICKET_COLUMNS],
        *LINEAGE_NAMES,
        "raw_key",
        "raw_value",
    )
    return parse, to_map, to_values, to_texts, verdict, bounded
