"""Recurring schedules: POST/GET /api/schedules, GET/PATCH/DELETE /api/schedules/<schedule_id>."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic import ValidationError as PydanticValidationError

from api.auth import current_client, require_client
from api.errors import ApiError, NotFoundError, ValidationError
from api.extension import runtime
from api.requests import job_request_from
from api.schemas import json_body
from api.serialize import schedule_body, schedule_list_body
from jobs.cron import check_expression, zone_of
from jobs.schedules import ScheduleNeverRunsError, change_schedule, create_schedule, job_body
from render.validation import field_errors
from store import schedules as schedule_store

bp = Blueprint("schedules", __name__, url_prefix="/api/schedules")

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


def _cron(value: str) -> str:
    check_expression(value)  # a CronError is a ValueError: pydantic reports it for the field
    return value


def _zone(value: str) -> str:
    zone_of(value)
    return value


Cron = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255), AfterValidator(_cron)]
Zone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), AfterValidator(_zone)]
Missed = Literal["run_once", "skip"]


class ScheduleBody(BaseModel):
    """The body of POST /api/schedules."""

    model_config = ConfigDict(extra="forbid")

    cron: Cron = Field(description="5 fields (minute hour day month weekday), or 6 with seconds last; or @daily")
    timezone: Zone = Field(description="IANA time zone the cron expression is read in, e.g. Asia/Jakarta")
    job: dict[str, Any] = Field(description="A submit body (as POST /api/reports/generate-async takes it, "
                                            "without runAt): each run is a job made from it")
    start: AwareDatetime | None = Field(None, description="No run before this (ISO 8601 with time zone)")
    end: AwareDatetime | None = Field(None, description="No run after this; the schedule then ends")
    missed: Missed = Field("run_once", description="Runs missed while no scheduler ran: run_once (one run now) "
                                                   "or skip")
    paused: bool = Field(False, description="Create it paused")

    @model_validator(mode="after")
    def _end_after_start(self) -> ScheduleBody:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class SchedulePatch(BaseModel):
    """The body of PATCH /api/schedules/<id>: any field of a schedule; `paused` pauses and resumes."""

    model_config = ConfigDict(extra="forbid")

    cron: Cron | None = None
    timezone: Zone | None = None
    job: dict[str, Any] | None = None
    start: AwareDatetime | None = Field(None, description="null removes the start")
    end: AwareDatetime | None = Field(None, description="null removes the end")
    missed: Missed | None = None
    paused: bool | None = None


NULLABLE = frozenset({"start", "end"})


def _validated(model: type[BaseModel], body: dict[str, Any]) -> BaseModel:
    try:
        return model.model_validate(body)
    except PydanticValidationError as exc:
        raise ValidationError("The schedule has invalid fields; see details.", details=field_errors(exc)) from None


def checked_fields(model: type[BaseModel], body: dict[str, Any]) -> dict[str, Any]:
    """The fields the body gives, validated; `job` checked exactly as a submit body and stored normalised."""
    parsed = _validated(model, body)
    fields = {name: getattr(parsed, name) for name in parsed.model_fields_set}
    if model is ScheduleBody:
        fields = parsed.model_dump()
    nulls = [name for name, value in fields.items() if value is None and name not in NULLABLE]
    if nulls:
        raise ValidationError("Only start and end may be null; see details.",
                              details=[{"field": name, "message": "must not be null"} for name in nulls])
    if "job" in fields:
        fields["job"] = checked_job(fields["job"])
    return fields


def checked_job(job: dict[str, Any]) -> dict[str, Any]:
    """A schedule's job body validated as a submit body; errors name their field under `job.`."""
    if "runAt" in job:
        raise ValidationError("A schedule's runs start at its cron times: leave runAt out of its job (use start).",
                              details=[{"field": "job.runAt", "message": "is not allowed in a schedule's job"}])
    try:
        return job_body(job_request_from(job))
    except ApiError as exc:
        exc.details = [detail | {"field": f"job.{detail['field']}"} for detail in exc.details] or \
            [{"field": "job", "message": exc.message}]
        raise


@bp.post("")
@require_client
def create() -> ResponseReturnValue:
    """Create a schedule: 201 with it (its first run in `next_run_at`)."""
    fields = checked_fields(ScheduleBody, json_body())
    try:
        schedule = create_schedule(runtime(), current_client().name, fields)
    except ScheduleNeverRunsError as exc:
        raise ValidationError(f"The schedule would never run: {exc}.",
                              details=[{"field": "end", "message": "comes before the first run"}]) from None
    body = schedule_body(schedule)
    return jsonify(body), 201, {"Location": f"{bp.url_prefix}/{schedule.schedule_id}"}


@bp.get("")
@require_client
def list_all() -> ResponseReturnValue:
    """The caller's schedules (every schedule for an admin client), newest first."""
    limit, cursor = _page()
    client = current_client()
    with runtime().session() as session:
        found = schedule_store.list_schedules(session, client_name=None if client.admin else client.name,
                                              before=cursor, limit=limit + 1)
    page = list(found[:limit])
    return jsonify(schedule_list_body(page, page[-1].schedule_id if len(found) > limit else None, limit))


def _page() -> tuple[int, str | None]:
    limit_text, cursor = request.args.get("limit"), request.args.get("cursor")
    unknown = sorted(set(request.args) - {"limit", "cursor"})
    details = [{"field": name, "message": "is not a parameter of this list (limit, cursor)"} for name in unknown]
    if limit_text is not None and (not limit_text.isdigit() or int(limit_text) < 1):
        details.append({"field": "limit", "message": "must be a whole number of at least 1"})
    if cursor is not None and not (cursor.startswith("sch_") and cursor[4:].isalnum() and len(cursor) <= 64):
        details.append({"field": "cursor", "message": "is not a cursor returned by this endpoint"})
    if details:
        raise ValidationError("Invalid query parameters; see details.", details=details)
    return min(int(limit_text or DEFAULT_LIMIT), MAX_LIMIT), cursor


def _load(schedule_id: str) -> Any:
    client = current_client()
    with runtime().session() as session:
        schedule = schedule_store.get_client_schedule(session, schedule_id, client.name, admin=client.admin)
    if schedule is None:
        raise _not_found(schedule_id)
    return schedule


def _not_found(schedule_id: str) -> NotFoundError:
    return NotFoundError(f"No schedule {schedule_id!r}: check the id returned when it was created "
                         "(GET /api/schedules lists yours).")


@bp.get("/<schedule_id>")
@require_client
def get_one(schedule_id: str) -> ResponseReturnValue:
    """One schedule."""
    return jsonify(schedule_body(_load(schedule_id)))


@bp.patch("/<schedule_id>")
@require_client
def change(schedule_id: str) -> ResponseReturnValue:
    """Change a schedule: pause ({"paused": true}), resume, or change its cron, time zone, job, start, end."""
    fields = checked_fields(SchedulePatch, json_body())
    client = current_client()
    schedule = change_schedule(runtime(), schedule_id, client.name, fields, admin=client.admin)
    if schedule is None:
        raise _not_found(schedule_id)
    return jsonify(schedule_body(schedule))


@bp.delete("/<schedule_id>")
@require_client
def delete(schedule_id: str) -> ResponseReturnValue:
    """Delete a schedule: 204; the jobs it made stay."""
    _load(schedule_id)
    with runtime().session() as session:
        schedule_store.delete_schedule(session, schedule_id)
    return "", 204
