"""Where personal data sits in a lake table, and how to take one person out of it.

The event schemas mark personal fields (``json_schema_extra={"personal": True}``);
this module turns those marks into operations on Arrow tables, so the catalog,
deletion requests, export and verification all agree on what "holds the subject"
means, for any dataset and any future schema, without a per-dataset list to forget
to update. Three shapes occur:

* a top-level personal column (``author_id``, ``agent_id``, ``actor_id``): the row
  is *about* that person, so erasing them removes the row;
* a ``subject_ids`` list column (quarantine, serving logs): the row was catalogued as
  holding those people, so erasing any of them removes the row;
* a personal field nested in a list of structs (``tags[].applied_by``): the row is
  another person's message that the subject merely touched, so erasing the subject
  *redacts* that field (null) and keeps the row: removing it would lose someone
  else's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

SUBJECT_LIST_COLUMN = "subject_ids"


@lru_cache(maxsize=1)
def _personal_names() -> frozenset[str]:
    from socialsuggest.events.schemas import personal_field_names

    return personal_field_names()


@dataclass(frozen=True)
class PersonalLayout:
    """The personal columns of one schema."""

    direct: tuple[str, ...]  # string columns: a match removes the row
    lists: tuple[str, ...]  # list<string> columns of subject ids: a match removes the row
    nested: tuple[tuple[str, str], ...]  # (list<struct> column, child): a match is redacted

    @property
    def columns(self) -> list[str]:
        """Columns to read to find subjects (a projection: cheap on Parquet)."""
        names = [*self.direct, *self.lists, *(column for column, _ in self.nested)]
        return list(dict.fromkeys(names))

    def __bool__(self) -> bool:
        return bool(self.direct or self.lists or self.nested)


def layout(schema: pa.Schema) -> PersonalLayout:
    names = _personal_names()
    direct, lists, nested = [], [], []
    for field in schema:
        kind = field.type
        if field.name in names and pa.types.is_string(kind):
            direct.append(field.name)
        elif field.name == SUBJECT_LIST_COLUMN and pa.types.is_list(kind):
            lists.append(field.name)
        elif pa.types.is_list(kind) and pa.types.is_struct(kind.value_type):
            for child in kind.value_type:
                if child.name in names and pa.types.is_string(child.type):
                    nested.append((field.name, child.name))
    return PersonalLayout(tuple(direct), tuple(lists), tuple(nested))


def _list_array(table: pa.Table, column: str) -> pa.ListArray:
    return table.column(column).combine_chunks()


def subjects_in(table: pa.Table) -> set[str]:
    """Every distinct person identifier the table holds."""
    found: set[str] = set()
    spec = layout(table.schema)
    for column in spec.direct:
        found.update(v for v in pc.unique(table.column(column)).to_pylist() if v)
    for column in spec.lists:
        values = pc.list_flatten(_list_array(table, column))
        found.update(v for v in pc.unique(values).to_pylist() if v)
    for column, child in spec.nested:
        structs = pc.list_flatten(_list_array(table, column))
        found.update(v for v in pc.unique(pc.struct_field(structs, child)).to_pylist() if v)
    return found


def _rows_mask(table: pa.Table, spec: PersonalLayout, subject: str) -> pa.Array:
    """True for rows that are *about* the subject (removed on erasure)."""
    mask = pa.array([False] * table.num_rows, pa.bool_())
    for column in spec.direct:
        hit = pc.fill_null(pc.equal(table.column(column).combine_chunks(), subject), False)
        mask = pc.or_(mask, hit)
    for column in spec.lists:
        lists = _list_array(table, column)
        hits = pc.fill_null(pc.equal(pc.list_flatten(lists), subject), False)
        parents = pc.filter(pc.list_parent_indices(lists), hits)
        mask = pc.or_(mask, pc.is_in(pa.array(range(table.num_rows)), value_set=parents))
    return mask


def _nested_hits(table: pa.Table, column: str, child: str, subject: str) -> pa.Array:
    """Per row: how many nested items carry the subject."""
    lists = _list_array(table, column)
    hits = pc.fill_null(pc.equal(pc.struct_field(pc.list_flatten(lists), child), subject), False)
    parents = pc.filter(pc.list_parent_indices(lists), hits).to_numpy()
    counts = [0] * table.num_rows
    for parent in parents:
        counts[int(parent)] += 1
    return pa.array(counts, pa.int64())


def count_subject(table: pa.Table, subject: str) -> int:
    """Rows in which the subject appears anywhere (0 is what verification must see)."""
    spec = layout(table.schema)
    if not spec or table.num_rows == 0:
        return 0
    mask = _rows_mask(table, spec, subject)
    for column, child in spec.nested:
        mask = pc.or_(mask, pc.greater(_nested_hits(table, column, child, subject), 0))
    return int(pc.sum(mask).as_py() or 0)


@dataclass(frozen=True)
class Erasure:
    """The outcome of taking one subject out of one table."""

    kept: pa.Table
    rows_removed: int
    values_redacted: int

    @property
    def changed(self) -> bool:
        return self.rows_removed > 0 or self.values_redacted > 0


def erase(table: pa.Table, subject: str) -> Erasure:
    """Remove rows about the subject and redact nested mentions of them."""
    spec = layout(table.schema)
    if not spec or table.num_rows == 0:
        return Erasure(table, 0, 0)
    mask = _rows_mask(table, spec, subject)
    kept = table.filter(pc.invert(mask))
    removed = table.num_rows - kept.num_rows
    redacted = 0
    for column, child in spec.nested:
        kept, count = _redact(kept, column, child, subject)
        redacted += count
    return Erasure(kept, removed, redacted)


def _redact(table: pa.Table, column: str, child: str, subject: str) -> tuple[pa.Table, int]:
    lists = _list_array(table, column)
    values: pa.StructArray = lists.values  # unsliced, so the offsets stay valid
    target = values.field(child)
    hits = pc.fill_null(pc.equal(target, subject), False)
    count = int(pc.sum(pc.list_flatten(_flag_lists(lists, hits))).as_py() or 0)
    if count == 0:
        return table, 0
    cleaned = pc.if_else(hits, pa.scalar(None, target.type), target)
    fields = [values.field(i) for i in range(values.type.num_fields)]
    index = values.type.get_field_index(child)
    fields[index] = cleaned
    struct = pa.StructArray.from_arrays(
        fields, fields=list(values.type), mask=values.is_null() if values.null_count else None
    )
    rebuilt = pa.ListArray.from_arrays(
        lists.offsets, struct, type=lists.type, mask=lists.is_null() if lists.null_count else None
    )
    position = table.schema.get_field_index(column)
    return table.set_column(position, table.schema.field(column), rebuilt), count


def _flag_lists(lists: pa.ListArray, hits: pa.Array) -> pa.ListArray:
    """The hit flags regrouped by the lists' offsets (only items the lists reference)."""
    return pa.ListArray.from_arrays(lists.offsets, hits)


def matching_rows(table: pa.Table, subject: str) -> list[dict[str, object]]:
    """The records held about the subject, for a right-of-access export.

    Rows about the subject are returned whole; rows another person owns but the
    subject touched (a nested mention) are returned as their non-personal id columns
    plus only the nested items that are the subject's.
    """
    spec = layout(table.schema)
    if not spec or table.num_rows == 0:
        return []
    mask = _rows_mask(table, spec, subject)
    records: list[dict[str, object]] = table.filter(mask).to_pylist()
    names = _personal_names()
    ids = [
        f.name
        for f in table.schema
        if f.name.endswith("_id") and f.name not in names and pa.types.is_string(f.type)
    ]
    for column, child in spec.nested:
        nested = pc.greater(_nested_hits(table, column, child, subject), 0)
        touched = pc.and_(nested, pc.invert(mask))
        for row in table.filter(touched).to_pylist():
            items = [item for item in row[column] or [] if item and item.get(child) == subject]
            records.append({**{name: row[name] for name in ids}, column: items})
    return records
