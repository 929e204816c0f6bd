"""Domain errors and their one rendering: RFC 9457 problem+json with a stable ``code``.

Services raise these; they never know about HTTP beyond the status each one carries.
"""

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, ClassVar, TypeVar

PROBLEM_JSON = "application/problem+json"


class ConfigurationError(RuntimeError):
    """The process cannot run as configured (missing extension, bad secret …)."""


class AppError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init_subclass__(
        cls,
        *,
        status: int | None = None,
        code: str | None = None,
        title: str | None = None,
        **kwargs: Any,
    ) -> None:
        """A subclass names what it changes from its base as class keywords.

        ``class NotFound(AppError, status=404, code="not_found", title="Not found"): ...``
        """
        super().__init_subclass__(**kwargs)
        for name, value in {"status": status, "code": code, "title": title}.items():
            if value is not None:
                setattr(cls, name, value)

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra

    def to_problem(self) -> dict[str, Any]:
        return problem(
            status=self.status,
            code=self.code,
            title=self.title,
            detail=self.detail,
            errors=self.errors,
            **self.extra,
        )


def problem(
    *,
    status: int,
    code: str,
    title: str | None = None,
    detail: str | None = None,
    errors: list[dict[str, str]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    title = title or HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": f"https://sentinel.example/problems/{code.replace('_', '-')}",
        "title": title,
        "status": status,
        "detail": detail or title,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    return body


_LOCATIONS = frozenset({"body", "query", "path", "header", "form"})


def validation_problem(errors: Sequence[Any]) -> dict[str, Any]:
    """The 422 problem for pydantic's error list, naming each field the way clients send it."""
    return ValidationFailed.of_pydantic(errors).to_problem()


class ValidationFailed(
    AppError, status=422, code="validation_error", title="The request is not valid"
):
    @classmethod
    def of_field(cls, field: str, message: str) -> "ValidationFailed":
        """One field is wrong: ``message`` says how."""
        return cls(message, errors=[{"field": field, "message": message}])

    @classmethod
    def of_pydantic(cls, errors: Sequence[Any]) -> "ValidationFailed":
        """Pydantic's error list, each field named the way clients send it."""
        fields = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ()) if p not in _LOCATIONS)
                or "body",
                "message": e.get("msg", "invalid"),
            }
            for e in errors
        ]
        return cls("; ".join(f"{f['field']}: {f['message']}" for f in fields), errors=fields)


class Unauthenticated(
    AppError, status=401, code="unauthenticated", title="Authentication required"
):
    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class InvalidCredentials(
    Unauthenticated, code="invalid_credentials", title="Wrong username or password"
): ...


class Forbidden(AppError, status=403, code="forbidden", title="This role may not do that"): ...


class LinkExpired(AppError, status=403, code="link_expired", title="This link has expired"): ...


class NotFound(AppError, status=404, code="not_found", title="Not found"): ...


_Found = TypeVar("_Found")


def found(thing: _Found | None, detail: str) -> _Found:
    """``thing``, looked up by its key; None (there is none) is a 404 saying ``detail``."""
    if thing is None:
        raise NotFound(detail)
    return thing


class Conflict(AppError, status=409, code="conflict", title="Conflict"): ...


class AlreadyExists(Conflict, code="already_exists", title="It exists already"): ...


class OutsideServiceArea(
    AppError,
    status=422,
    code="outside_service_area",
    title="The point is outside every district served",
): ...


class InvalidGeoJSON(
    AppError,
    status=422,
    code="invalid_geojson",
    title="The upload is not a GeoJSON FeatureCollection",
): ...


class InvalidAreaFeature(
    AppError,
    status=422,
    code="invalid_area_feature",
    title="An area in the import is not acceptable",
):
    """One feature of an area import is refused; ``code`` says why, ``detail`` names it."""


class AreaMissingField(InvalidAreaFeature, code="area_missing_field"): ...


class UnknownParentArea(InvalidAreaFeature, code="unknown_parent_area"): ...


class AreaOutsideParent(InvalidAreaFeature, code="area_outside_parent"): ...


class CoordinatesOutOfRange(InvalidAreaFeature, code="coordinates_out_of_range"): ...


class InvalidGeometry(InvalidAreaFeature, code="invalid_geometry"): ...


class InvalidAreaLevel(InvalidAreaFeature, code="invalid_area_level"): ...


class PayloadTooLarge(
    AppError, status=413, code="payload_too_large", title="The upload is too large"
): ...


class UnsupportedMediaType(
    AppError,
    status=415,
    code="unsupported_media_type",
    title="Only JPEG, PNG and WebP photos are accepted",
): ...


class InvalidImage(
    AppError, status=422, code="invalid_image", title="The image cannot be decoded"
): ...


class ImageTooManyPixels(
    AppError, status=422, code="image_too_many_pixels", title="The image has too many pixels"
): ...


class UnknownCategory(
    ValidationFailed,
    code="unknown_category",
    title="No such category, or it is not accepting reports",
): ...


class UnknownMedia(
    ValidationFailed,
    code="unknown_media",
    title="A photo is unknown or was uploaded by someone else",
): ...


class WebhookUrlRefused(
    ValidationFailed, code="webhook_url_refused", title="This URL cannot receive webhooks"
):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, errors=[{"field": "url", "message": detail}])


class ObservedAtOutOfRange(
    ValidationFailed,
    code="observed_at_out_of_range",
    title="observed_at is in the future or too long ago",
): ...


class InvalidIdempotencyKey(
    ValidationFailed,
    code="invalid_idempotency_key",
    title="Idempotency-Key must be 1–255 visible characters",
): ...


class IdempotencyKeyReused(
    ValidationFailed,
    code="idempotency_key_reused",
    title="This Idempotency-Key was used for a different request",
): ...


class IdempotencyKeyInFlight(
    Conflict,
    code="idempotency_key_in_flight",
    title="A request with this Idempotency-Key is still being processed",
): ...


class SignInThrottled(
    AppError,
    status=429,
    code="sign_in_throttled",
    title="Too many failed sign-ins; wait before trying again",
): ...


class SignInBusy(
    AppError, status=503, code="sign_in_busy", title="Too many sign-ins at once; try again shortly"
): ...


class RateLimited(
    AppError, status=429, code="rate_limited", title="Too many reports; try again later"
): ...


class UploadsLimited(
    AppError,
    status=429,
    code="upload_rate_limited",
    title="Too many photos from this rider; try again later",
):
    def __init__(self, detail: str | None = None, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)}, retry_after=retry_after)


class PhotosBusy(
    AppError,
    status=503,
    code="photos_busy",
    title="The photo cannot be processed now; try again shortly",
):
    def __init__(self, detail: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)}, retry_after=retry_after)


class StorageFull(
    AppError,
    status=507,
    code="storage_full",
    title="The service cannot store this now; try again later",
):
    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": "60"})


class DatabaseBusy(
    AppError, status=503, code="database_busy", title="The database is busy; try again shortly"
):
    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": "1"})


class AlreadyAcknowledged(
    Conflict, code="already_acknowledged", title="The ticket was signed for already"
): ...


class ExtensionPending(
    Conflict, code="extension_pending", title="An extension is waiting for a decision already"
): ...


class NoExtensionPending(
    Conflict, code="no_extension_pending", title="No extension is waiting for a decision"
): ...


class NotEscalated(Conflict, code="not_escalated", title="The ticket is not escalated"): ...


class InvalidTransition(
    Conflict,
    code="invalid_transition",
    title="This action is not possible in the ticket's current status",
): ...


class PreconditionFailed(
    AppError, status=412, code="version_mismatch", title="The ticket has changed since you read it"
): ...


class TicketNotResolved(
    Conflict, code="ticket_not_resolved", title="Only a resolved ticket can be verified"
): ...


class FeedbackClosed(
    Conflict, code="feedback_closed", title="This ticket takes no rating from you now"
): ...


class AlreadyVerified(
    Conflict, code="already_verified", title="You have verified this ticket already"
): ...


class TooFarToVerify(
    AppError, status=422, code="too_far_to_verify", title="Too far from the ticket to verify it"
): ...


class MediaStoreUnavailable(
    AppError,
    status=503,
    code="media_store_unavailable",
    title="The photo store cannot be reached; try again shortly",
):
    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": "5"})
