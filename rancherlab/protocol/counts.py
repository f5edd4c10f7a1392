"""Steve's `count` resource: one object whose updates carry only the types whose count changed.

A `{"resourceType":"count"}` watch first sends the whole map, `{"id":"count","type":"count","counts":{<schema
id>: {"summary": …, "namespaces": …}, …}}`; every later `resource.change` holds only the schemas whose count
changed since, each with its *complete* entry (steve:`pkg/resources/counts/counts.go`, `Store.Watch` sends
`Count{ID: "count", Counts: {schema.ID: itemCount}}` for the one schema an add, change or remove touched, and
`buffer.go` merges the pending ones per schema before each debounced send; rancher/rancher#36681,
rancher/steve#58). A client holds the merged map: the dashboard merges each update's `counts` into the count
object it has (rancher/dashboard `shell/plugins/steve/subscribe.js`, dashboard#7647). A type whose last object
went away stays in the map with an empty summary (Go's `omitempty` leaves `{"summary":{}}`).

REST (`GET /v1/counts`, `GET /v1/counts/count`) always answers the whole map, so a listed count object
replaces what a client held, and only a watch event merges.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

TYPE: Final = "count"  # the schema id; its plural, `counts`, is what `links.self` and REST use
PLURAL: Final = "counts"
ID: Final = "count"


def is_count(resource_type: object) -> bool:
    """Does a Steve object of this `type` follow the count merge rule? (Schema ids compare ignoring case.)"""
    return isinstance(resource_type, str) and resource_type.lower() == TYPE


def merge(previous: Mapping[str, Any] | None, update: Mapping[str, Any]) -> dict[str, Any]:
    """The count object a client holds after `update`: per schema, the update's entry replaces the held one.

    `previous` is the count object held before (None: nothing yet), `update` the `data` of a `resource.change`
    of type `count`. Returns a new dict (neither argument is changed): the held fields overlaid by the update's,
    with `counts` the held map overlaid by the update's map, schema by schema. A schema entry is replaced whole, never merged
    field by field, as Steve always sends a changed schema's complete summary. When either side has no
    `counts` map (a disguised error, a malformed object), the update's `counts` (or none) is kept as it came.
    """
    if previous is None:
        return dict(update)
    merged = {**previous, **update}
    held = previous.get("counts")
    changed = update.get("counts")
    if isinstance(held, Mapping) and isinstance(changed, Mapping):
        merged["counts"] = {**held, **changed}
    return merged
