"""The `AgentBlueprint` and `AgentIdentity` custom resources, validated once at the edge.

Every source (files, the cluster) turns raw Kubernetes objects into these typed objects with
`parse_object`; the core only ever sees validated objects or an `InvalidObject` that carries a
message naming the object, the field, and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr, ValidationError
from pydantic import model_validator as _model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from webhook.common.names import is_object_name
from webhook.common.text import QUOTE_LIMIT, clip, elide, quoted

GROUP = "entra.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
# How to install (or update) the CRDs without Helm: they ship apart from the workloads.
INSTALL_CRDS = "kubectl apply -k manifests/crds"
BLUEPRINT = "AgentBlueprint"
IDENTITY = "AgentIdentity"
KINDS = (BLUEPRINT, IDENTITY)
PLURALS = {BLUEPRINT: "agentblueprints", IDENTITY: "agentidentities"}

DEFAULT_INSTANCE = "https://login.microsoftonline.com/"
DEFAULT_AUDIENCE = "api://AzureADTokenExchange"

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
# A configuration key segment: no "__" (the ASP.NET separator) and a valid Kubernetes env var name.
_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]*(_[A-Za-z0-9-]+)*$")


def _shown(value: object) -> str:
    """A value quoted in a message, bounded whatever its size (anyone who may write a resource chose it)."""
    return quoted(value) if isinstance(value, str) else clip(repr(value), QUOTE_LIMIT)


# What the CRDs' CEL rules (Kubernetes 1.25+) refuse, in the same words (tests/test_crds.py holds them
# together): older servers accept such a resource, and Pods naming it are denied with the fix.
UNNAMED_IDENTITY = "set spec.clientId (an existing agent identity) or spec.sponsors (to have one created)"
INCOMPLETE_BLUEPRINT = (
    "set spec.tenantId, spec.clientId and spec.credential, or spec.envFrom naming a ConfigMap or Secret that "
    "holds the AzureAd__* settings"
)
ONE_CREDENTIAL = (
    "set exactly one of spec.credential.workloadIdentity (a projected service-account token; an empty object "
    "takes the defaults) or spec.credential.clientSecret (a Secret's name and key)"
)
ONE_ENV_FROM_SOURCE = "set exactly one of configMapRef or secretRef in each spec.envFrom entry"
API_NAME = (
    "a downstream API name starts with a letter and holds only letters, digits, '-' and single '_' (it becomes "
    "part of the sidecar's env var names and URL paths)"
)
GROUP_SPONSORS = "at most 5 sponsors may be groups (Entra's limit); list users instead"


def _fail(kind: str, message: str, value: object) -> PydanticCustomError:
    return PydanticCustomError(kind, "{message}, got {value}", {"message": message, "value": _shown(value)})


def _guid(value: str) -> str:
    if not _GUID.fullmatch(value):
        raise _fail("guid", "must be a GUID like 7a1c2f0e-4b5d-4c3e-9f00-123456789abc", value)
    return value.lower()


def _dns_subdomain(value: str) -> str:
    if not is_object_name(value):
        raise _fail("name", "must be a Kubernetes object name (lowercase letters, digits, '-' and '.')", value)
    return value


def _secret_key(value: str) -> str:
    if len(value) > 253 or not _SECRET_KEY.fullmatch(value):
        raise _fail("secret_key", "must be a Secret key (letters, digits, '-', '_' and '.')", value)
    return value


def _api_name(value: str) -> str:
    if not _API_NAME.fullmatch(value):
        raise _fail("api_name", API_NAME, value)
    return value


def _url(value: str, *, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        raise _fail("url", f"must be an absolute {' or '.join(schemes)} URL", value)
    return value


def _https_url(value: str) -> str:
    return _url(value, schemes=("https",))


def _http_url(value: str) -> str:
    return _url(value, schemes=("https", "http"))


def _expiration(value: int) -> int:
    if not 3600 <= value <= 86400:
        raise _fail("expiration", "must be between 3600 and 86400 seconds (1 to 24 hours)", value)
    return value


def _non_empty(value: str) -> str:
    if not value.strip():
        raise _fail("empty", "must not be empty", value)
    return value


Guid = Annotated[StrictStr, AfterValidator(_guid)]
ObjectName = Annotated[StrictStr, AfterValidator(_dns_subdomain)]
SecretKey = Annotated[StrictStr, AfterValidator(_secret_key)]
ApiName = Annotated[StrictStr, AfterValidator(_api_name)]
HttpsUrl = Annotated[StrictStr, AfterValidator(_https_url)]
HttpUrl = Annotated[StrictStr, AfterValidator(_http_url)]
NonEmpty = Annotated[StrictStr, AfterValidator(_non_empty)]
LogLevel = Literal["Trace", "Debug", "Information", "Warning", "Error", "Critical", "None"]
HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


class _Spec(BaseModel):
    """Kubernetes field names (camelCase), immutable, and unknown fields are errors, not ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid")


class WorkloadIdentityCredential(_Spec):
    audience: NonEmpty = DEFAULT_AUDIENCE
    expiration_seconds: Annotated[StrictInt, AfterValidator(_expiration)] = 3600


class ClientSecretCredential(_Spec):
    secret_name: ObjectName
    key: SecretKey


class Credential(_Spec):
    workload_identity: WorkloadIdentityCredential | None = None
    client_secret: ClientSecretCredential | None = None

    @_model_validator(mode="after")
    def _exactly_one(self) -> Credential:
        if (self.workload_identity is None) == (self.client_secret is None):
            raise PydanticCustomError("one_credential", ONE_CREDENTIAL)
        return self


class DownstreamApi(_Spec):
    base_url: HttpUrl
    scopes: tuple[NonEmpty, ...] = ()
    request_app_token: StrictBool | None = None
    relative_path: StrictStr | None = None
    http_method: HttpMethod | None = None


class LocalObjectRef(_Spec):
    name: ObjectName
    optional: StrictBool | None = None


class EnvFromSource(_Spec):
    config_map_ref: LocalObjectRef | None = None
    secret_ref: LocalObjectRef | None = None
    prefix: StrictStr | None = None

    @_model_validator(mode="after")
    def _exactly_one(self) -> EnvFromSource:
        if (self.config_map_ref is None) == (self.secret_ref is None):
            raise PydanticCustomError("one_ref", ONE_ENV_FROM_SOURCE)
        return self


class BlueprintSpec(_Spec):
    tenant_id: Guid | None = None
    client_id: Guid | None = None
    instance: HttpsUrl | None = None
    credential: Credential | None = None
    downstream_apis: dict[ApiName, DownstreamApi] = {}
    env_from: tuple[EnvFromSource, ...] = ()
    log_level: LogLevel | None = None

    @_model_validator(mode="after")
    def _complete_without_env_from(self) -> BlueprintSpec:
        if self.env_from:
            return self
        missing = [
            name
            for name, value in (
                ("tenantId", self.tenant_id),
                ("clientId", self.client_id),
                ("credential", self.credential),
            )
            if value is None
        ]
        if missing:
            raise PydanticCustomError(
                "incomplete",
                INCOMPLETE_BLUEPRINT + " (missing: {missing})",
                {"missing": ", ".join(missing)},
            )
        return self


MAX_SPONSORS = 100  # Entra's limits for an agent identity's sponsors
MAX_GROUP_SPONSORS = 5
MAX_DISPLAY_NAME = 256


class Sponsor(_Spec):
    """A user or group (by object id) that Entra records as responsible for the agent identity."""

    kind: Literal["User", "Group"]
    id: Guid


def _display_name(value: str) -> str:
    if not value.strip() or len(value) > MAX_DISPLAY_NAME:
        raise _fail("display_name", f"must hold 1 to {MAX_DISPLAY_NAME} characters", value)
    return value


class IdentitySpec(_Spec):
    """`clientId` names an existing identity; `sponsors` make it managed (created, or adopted with `clientId`)."""

    blueprint: ObjectName
    client_id: Guid | None = None
    service_accounts: tuple[ObjectName, ...] = ()
    sponsors: tuple[Sponsor, ...] = ()
    display_name: Annotated[StrictStr, AfterValidator(_display_name)] | None = None
    deletion_policy: Literal["Delete", "Retain"] = "Delete"

    @_model_validator(mode="after")
    def _named_or_managed(self) -> IdentitySpec:
        if self.client_id is None and not self.sponsors:
            raise PydanticCustomError(
                "unnamed",
                UNNAMED_IDENTITY,
            )
        if len(self.sponsors) > MAX_SPONSORS:
            raise PydanticCustomError(
                "sponsors",
                "sponsors: at most {limit} (Entra's limit), got {count}",
                {"limit": MAX_SPONSORS, "count": len(self.sponsors)},
            )
        groups = sum(1 for sponsor in self.sponsors if sponsor.kind == "Group")
        if groups > MAX_GROUP_SPONSORS:
            raise PydanticCustomError(
                "sponsors",
                "sponsors: " + GROUP_SPONSORS + " (got {count})",
                {"limit": MAX_GROUP_SPONSORS, "count": groups},
            )
        return self

    @property
    def managed(self) -> bool:
        return bool(self.sponsors)


READY = "Ready"
# A condition's message as quoted in a denial: the controller writes at most this much, and a longer one (written
# by someone else) loses its middle, never the fix at its end.
MESSAGE_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class Condition:
    status: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class IdentityStatus:
    """What the controller wrote; read leniently: a malformed status is an empty one, never an error."""

    client_id: str | None = None
    ready: Condition | None = None

    @classmethod
    def parse(cls, raw: object) -> IdentityStatus:
        if not isinstance(raw, Mapping):
            return cls()
        client_id = raw.get("clientId")
        valid = isinstance(client_id, str) and _GUID.fullmatch(client_id) is not None
        ready = None
        conditions = raw.get("conditions")
        for item in conditions if isinstance(conditions, list) else []:
            if isinstance(item, Mapping) and item.get("type") == READY:
                ready = Condition(
                    str(item.get("status", "Unknown"))[:20],
                    str(item.get("reason", ""))[:80],
                    elide(str(item.get("message", "")), MESSAGE_LIMIT),
                )
        return cls(client_id.lower() if valid and isinstance(client_id, str) else None, ready)


@dataclass(frozen=True, slots=True)
class ObjectRef:
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f'{self.kind} "{self.name}" in namespace "{self.namespace}"'


@dataclass(frozen=True, slots=True)
class AgentBlueprint:
    ref: ObjectRef
    spec: BlueprintSpec


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    ref: ObjectRef
    spec: IdentitySpec
    status: IdentityStatus = IdentityStatus()

    @property
    def client_id(self) -> str | None:
        """The agent identity's app id: given in the spec, else recorded by the controller."""
        return self.spec.client_id or self.status.client_id

    @property
    def ready(self) -> bool:
        """Unmanaged identities are always usable; managed ones once the controller says Ready with an id."""
        if not self.spec.managed:
            return True
        return self.client_id is not None and self.status.ready is not None and self.status.ready.status == "True"


@dataclass(frozen=True, slots=True)
class InvalidObject:
    """A resource that exists but failed validation: Pods naming it are denied with `message`."""

    ref: ObjectRef
    message: str


ConfigObject = AgentBlueprint | AgentIdentity | InvalidObject


class NotConfig(ValueError):
    """Raised for a document that is not one of our resources (the caller decides what that means)."""


def is_config(document: Mapping[str, Any]) -> bool:
    return document.get("apiVersion") == API_VERSION and document.get("kind") in KINDS


def parse_object(document: Mapping[str, Any], default_namespace: str = "default") -> ConfigObject:
    """Validate one Kubernetes object of our kinds into its typed form, or an `InvalidObject`."""
    if not is_config(document):
        raise NotConfig(
            f"not an {API_VERSION} {' or '.join(KINDS)}: apiVersion={document.get('apiVersion')!r} "
            f"kind={document.get('kind')!r}"
        )
    kind = str(document["kind"])
    metadata = document.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    name = metadata.get("name")
    namespace = metadata.get("namespace") or default_namespace
    if not isinstance(name, str) or not name:
        raise NotConfig(f"{kind} without metadata.name in namespace {namespace!r}: every {kind} needs a name")
    ref = ObjectRef(kind, str(namespace), name)
    spec_model = BlueprintSpec if kind == BLUEPRINT else IdentitySpec
    try:
        spec = spec_model.model_validate(document.get("spec"))
    except ValidationError as error:
        return InvalidObject(ref, f"{ref} is invalid: {describe_errors(error, 'spec', spec_model)}")
    if isinstance(spec, BlueprintSpec):
        return AgentBlueprint(ref, spec)
    assert isinstance(spec, IdentitySpec)
    return AgentIdentity(ref, spec, IdentityStatus.parse(document.get("status")))


def parse_resource(kind: str, raw: Mapping[str, Any]) -> ConfigObject:
    """`parse_object` for a resource read from the API by its kind (whatever apiVersion and kind it carries)."""
    return parse_object({**raw, "apiVersion": API_VERSION, "kind": kind})


PROBLEM_LIMIT = 10  # problems named in one message; the rest are counted


def describe_errors(error: ValidationError, root: str, model: type[BaseModel]) -> str:
    """One clause per problem: the field path in Kubernetes spelling, then what is wrong and allowed."""
    problems = []
    for item in error.errors():
        loc = item["loc"]
        path = root + "".join(_path_part(part) for part in loc)
        message = item["msg"]
        if item["type"] == "missing":
            message = "is required"
        elif item["type"] == "extra_forbidden":
            message = f"is not a known field (allowed: {', '.join(_fields_at(model, loc[:-1]))})"
        elif item["type"] in {"model_type", "model_attributes_type", "dict_type"}:
            message = f"must be a mapping, got {_shown(item['input'])}"
        elif item["type"] in {"tuple_type", "list_type"}:
            message = f"must be a list, got {_shown(item['input'])}"
        elif item["type"] in {"literal_error", "string_type", "int_type", "bool_type"}:
            message = f"{message}, got {_shown(item['input'])}"
        problems.append(f"{path}: {message}")
    shown = problems[:PROBLEM_LIMIT]
    more = len(problems) - len(shown)
    return "; ".join(shown) + (f"; and {more} more problem{'s' if more > 1 else ''}" if more else "")


def _path_part(part: int | str) -> str:
    if isinstance(part, int):
        return f"[{part}]"
    return " (the name)" if part == "[key]" else f".{clip(part)}"


def _fields_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The field names a nested model allows, found by walking `loc` through the annotations."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = {field.alias or name: field.annotation for name, field in current.model_fields.items()}
            current = fields.get(str(part))
        elif get_origin(current) in {tuple, dict, list}:
            current = get_args(current)[-1 if get_origin(current) is dict else 0]
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [field.alias or name for name, field in current.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    """`X | None` and `Annotated[X, ...]` to `X`."""
    while True:
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if get_origin(annotation) is Annotated or (get_origin(annotation) in {Union, UnionType} and len(args) == 1):
            annotation = args[0]
        else:
            return annotation
