"""Component schemas of the OpenAPI document, generated from the pydantic models (api/answers.py, SubmitBody,
ListQuery) and the template registry, in the OpenAPI 3.0 dialect: the pinned Swagger UI (4.15) renders no 3.1."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from copy import deepcopy
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.answers import MODELS
from api.batch import ITEM_KEY
from api.job_list import ListQuery
from api.requests import MAX_IDEMPOTENCY_KEY
from api.schedules import ScheduleBody, SchedulePatch
from api.schemas import SubmitBody
from render import Template

REF = "#/components/schemas/{model}"
PRODUCT_PROPERTY = "productId"
FORMAT_EXAMPLES = {"date": "2026-01-15", "date-time": "2026-01-15T10:30:00Z"}
NAMED = frozenset({"properties", "$defs"})  # keywords whose keys are names, not keywords
# JSON Schema 2020-12 keywords of a template's schema file that OpenAPI 3.0 has no place for
DROPPED = frozenset({"title", "$schema", "$id", "$comment", "errorMessage"})
REQUESTS = (SubmitBody, ScheduleBody, SchedulePatch)  # request models: shown through components() only


def ref(name: str) -> dict[str, str]:
    """A reference to a component schema."""
    return {"$ref": REF.format(model=name)}


def to_openapi30(schema: Any, defs: Mapping[str, Any]) -> Any:
    """A JSON Schema (pydantic's, or a template's) as OpenAPI 3.0: `anyOf [X, null]` becomes X with `nullable`,
    `const` an enum, `examples` one `example`; `$schema` and `errorMessage` go.

    Args:
        defs: the definitions `$ref`s name (full reference -> schema): 3.0 has no nullable reference
            (`nullable` beside a `$ref` or an `allOf` does not admit null), so a nullable one is inlined.
    """
    if isinstance(schema, list):
        return [to_openapi30(item, defs) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _named(value, defs) if key in NAMED else to_openapi30(value, defs)
           for key, value in schema.items() if key not in DROPPED}
    examples = out.pop("examples", None)
    if isinstance(examples, list) and examples:  # 3.0 has one `example`
        out["example"] = examples[0]
    if "const" in out:
        out["enum"] = [out.pop("const")]
    options = out.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [option for option in options if option != {"type": "null"}]
        del out["anyOf"]
        only = rest[0] if len(rest) == 1 else {"anyOf": rest}
        if "$ref" in only:
            only = to_openapi30(defs[only["$ref"]], defs)
        out = only | out | {"nullable": True}
    return out


def _named(schemas: dict[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """Schemas by name (properties, definitions): a property may be called "title"."""
    return {name: to_openapi30(schema, defs) for name, schema in schemas.items()}


def _by_ref(defs: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Definitions by the reference that names them once they are components called `prefix` + name."""
    return {REF.format(model=prefix + name): schema for name, schema in defs.items()}


@cache
def model_schemas() -> dict[str, dict[str, Any]]:
    """Every answer model, and the submit body, by model name (nested models included)."""
    models = [(model, "serialization") for model in MODELS] + [(model, "validation") for model in REQUESTS]
    _, top = models_json_schema(models, ref_template=REF)
    return _named(top["$defs"], _by_ref(top["$defs"]))


def components(templates: Iterable[Template], *, data_required: bool) -> dict[str, Any]:
    """Every named schema: the answers, then per product its data and its submit body, and SubmitRequest.

    Args:
        data_required: whether `data` must be sent inline (no MongoDB to read it from).
    """
    schemas = {name: schema for name, schema in deepcopy(model_schemas()).items()
               if name not in {model.__name__ for model in REQUESTS}}
    mapping: dict[str, str] = {}
    for template in templates:
        name = f"SubmitBody.{template.product_id}"
        schemas |= product_schemas(template, data_required=data_required)
        mapping[template.product_id] = REF.format(model=name)
    schemas["SubmitRequest"] = {
        "description": "A submit body; `productId` selects the schema of `data` (GET /api/templates lists them).",
        "oneOf": [{"$ref": target} for target in mapping.values()],
        "discriminator": {"propertyName": PRODUCT_PROPERTY, "mapping": mapping},
    }
    return schemas | batch_schemas(schemas, list(mapping)) | schedule_schemas()


def batch_schemas(schemas: dict[str, Any], products: list[str]) -> dict[str, Any]:
    """`BatchRequest` and its items: per product the submit body with an optional `idempotencyKey`."""
    items: dict[str, Any] = {}
    mapping = {}
    for product_id in products:
        body = schemas[f"SubmitBody.{product_id}"]
        items[f"BatchItem.{product_id}"] = body | {
            "description": f"{body['description']} An item of a batch: `idempotencyKey` is its own Idempotency-Key.",
            "properties": body["properties"] | {ITEM_KEY: {
                "type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY,
                "description": "This item's Idempotency-Key (default: derived from the batch's header and the "
                               "item's position)"}},
        }
        mapping[product_id] = REF.format(model=f"BatchItem.{product_id}")
    items["BatchItemRequest"] = {"oneOf": [{"$ref": target} for target in mapping.values()],
                                 "discriminator": {"propertyName": PRODUCT_PROPERTY, "mapping": mapping}}
    items["BatchRequest"] = {
        "type": "object", "required": ["items"], "additionalProperties": False,
        "description": "Up to BATCH_MAX_ITEMS (default 1000) submit bodies, each checked as a single submit.",
        "properties": {"items": {"type": "array", "minItems": 1, "items": ref("BatchItemRequest")}},
    }
    return items


def schedule_schemas() -> dict[str, Any]:
    """`ScheduleRequest` and `SchedulePatch` (the request models) with `job` shown as a submit body."""
    job = ref("SubmitRequest") | {"description": "A submit body without runAt: each run is a job made from it"}
    found = {}
    for name, model in (("ScheduleRequest", ScheduleBody), ("SchedulePatch", SchedulePatch)):
        schema = deepcopy(model_schemas()[model.__name__])
        schema["properties"]["job"] = job
        found[name] = schema
    return found


def product_schemas(template: Template, *, data_required: bool) -> dict[str, Any]:
    """`Data.<productId>` (the template's data schema, its nested definitions lifted beside it) and
    `SubmitBody.<productId>` (the submit body with that productId and that data)."""
    data_name = f"Data.{template.product_id}"
    data = _renamed_refs(template.schema(), "#/$defs/", REF.format(model=f"{data_name}."))
    defs = data.pop("$defs", {})
    by_ref = _by_ref(defs, f"{data_name}.")
    schemas = {f"{data_name}.{name}": to_openapi30(schema, by_ref) for name, schema in defs.items()}
    described = {"description": f"`data` of {template.product_id} ({template.title})"}
    schemas[data_name] = to_openapi30(data, by_ref) | described
    body = model_schemas()["SubmitBody"]
    properties = body["properties"] | {
        PRODUCT_PROPERTY: body["properties"][PRODUCT_PROPERTY] | {"enum": [template.product_id]},
        "data": ref(data_name),
    }
    required = [*body["required"], "data"] if data_required else body["required"]
    schemas[f"SubmitBody.{template.product_id}"] = body | {
        "description": f"Submit a {template.title} ({template.kind}) job.",
        "properties": properties,
        "required": required,
    }
    return schemas


def submit_examples(schemas: dict[str, Any]) -> dict[str, Any]:
    """A named example per product: the smallest submit body its schema accepts (Swagger UI leaves the
    discriminator out of the sample it makes itself, so "Try it out" needs these)."""
    mapping = schemas["SubmitRequest"]["discriminator"]["mapping"]
    return {product_id: {"summary": product_id, "value": smallest_value({"$ref": target}, schemas)}
            for product_id, target in mapping.items()}


def smallest_value(schema: dict[str, Any], schemas: dict[str, Any]) -> Any:
    """The smallest value `schema` accepts: required properties only, the first enum value, minimum sizes
    and numbers, and a placeholder per string format."""
    if "$ref" in schema:
        return smallest_value(schemas[schema["$ref"].removeprefix(REF.format(model=""))], schemas)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {name: smallest_value(schema["properties"][name], schemas) for name in schema.get("required", [])}
    if kind == "array":
        return [smallest_value(schema["items"], schemas) for _ in range(max(schema.get("minItems", 0), 1))]
    if kind == "string":
        return FORMAT_EXAMPLES.get(schema.get("format"), "x" * max(schema.get("minLength", 0), 1))
    if kind in ("number", "integer"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return True
    return None  # no type given: any value goes


def _renamed_refs(schema: Any, old: str, new: str) -> Any:
    """A copy of `schema` whose `$ref`s starting with `old` start with `new` instead."""
    if isinstance(schema, list):
        return [_renamed_refs(item, old, new) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _renamed_refs(value, old, new) for key, value in schema.items()}
    if isinstance(out.get("$ref"), str) and out["$ref"].startswith(old):
        out["$ref"] = new + out["$ref"].removeprefix(old)
    return out


def list_parameters() -> list[dict[str, Any]]:
    """The query parameters of GET /api/jobs, from the pydantic model that validates them."""
    schema = to_openapi30(ListQuery.model_json_schema(), {})
    described = {
        "status": "only jobs in this state (status=failed is the dead-letter view)",
        "created_after": "ISO 8601 with time zone; inclusive",
        "created_before": "ISO 8601 with time zone; exclusive",
        "limit": "page size, default 50, at most 200 (larger values are capped)",
        "cursor": "the next_cursor of the previous page",
    }
    return [
        {"name": name, "in": "query", "required": False, "schema": prop, "description": described.get(name, "")}
        for name, prop in schema["properties"].items()
    ]


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The query parameters of a pydantic query model, each described by its Field description."""
    schema = to_openapi30(model.model_json_schema(), {})
    return [
        {"name": name, "in": "query", "required": False, "description": prop.get("description", ""),
         "schema": {key: value for key, value in prop.items() if key != "description"}}
        for name, prop in schema["properties"].items()
    ]
