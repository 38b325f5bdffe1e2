"""Request and response bodies: the OpenAPI document is generated from these.
Requests forbid unknown keys, so a typo is a 422 naming it, never ignored."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from bwsandbox import faults, store
from bwsandbox.clock import MAX_OFFSET_DAYS
from bwsandbox.tenants import MAX_NAME_BYTES, name_problem

User = dict[str, str]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _tenant_name(name: str) -> str:
    """tenants.name_problem, the rule `tenant add` also applies, as a 422."""
    if (problem := name_problem(name)) is not None:
        raise PydanticCustomError("tenant_name", problem)
    return name


class TenantIn(Strict):
    name: Annotated[str, AfterValidator(_tenant_name)] = Field(
        description=f"the tenant's name (a folder name on disk): 1 to {MAX_NAME_BYTES} bytes in UTF-8, "
                    "no '/', no NUL, no leading '.'")
    username: str | None = Field(None, description="SFTP username; defaults to the name")
    password: str | None = Field(None, description="SFTP password; generated when omitted")
    region: Literal["us", "eu"] = "us"
    profile: Literal["core", "engage"] = "core"
    licenses: int = Field(1000, ge=0, le=store.INT_MAX)
    contact: str = Field("technical-contact@example.com", description="the Technical Contact's email")
    locale: Literal["en-US", "en-GB"] = "en-US"
    custom_keys: list[str] = Field(default_factory=list, description="custom columns (docs/production.md §3)")
    authorized_keys: list[str] = Field(default_factory=list, description="OpenSSH public key lines")
    users: list[User] = Field(default_factory=list, description="existing users to seed")


class Endpoint(BaseModel):
    region: str
    host: str
    port: int
    drop_folder: str


class HostKey(BaseModel):
    type: str
    bits: int
    openssh_sha256: str = Field(description="as OpenSSH and FileZilla show it: SHA256:...")
    openssh_md5: str
    putty: str = Field(description="as PuTTY shows it: type bits SHA256:...")
    curl_sha256: str = Field(description="for curl --hostpubsha256")
    public: str


class Tenant(BaseModel):
    name: str
    region: str
    profile: str
    username: str
    contact: str
    licenses: int
    locale: str
    custom_keys: list[str]
    endpoint: Endpoint
    known_hosts: list[str] = Field(description="ready-to-use known_hosts lines for the endpoint")
    host_keys: list[HostKey]
    links: dict[str, str]


class TenantCreated(Tenant):
    password: str
    seeded: dict[str, Any] | None = None


class ResetIn(Strict):
    users: list[User] = Field(default_factory=list, description="users to seed after the reset")


class FaultIn(Strict):
    kind: Literal["disconnect", "permission-denied", "disk-full", "slow", "refuse-login", "stall",
                  "host-key", "unavailable"]
    # faults.add's bounds, here too so that a number out of range is a 422
    # naming the field (and the OpenAPI document shows them).
    after_bytes: int = Field(0, ge=0, le=faults.MAX_BYTES)
    times: int | None = Field(None, ge=1, le=store.INT_MAX,
                              description="lift after this many firings; null: until cleared")
    delay_ms: int = Field(0, ge=0, le=faults.MAX_DELAY_MS)
    kbps: int = Field(0, ge=0, le=store.INT_MAX)
    probability: float = Field(1.0, gt=0, le=1)
    seed: int = Field(0, ge=store.INT_MIN, le=store.INT_MAX)
    endpoint: bool = Field(False, description="the tenant's whole endpoint (always for host-key)")


class ClockSet(Strict):
    today: str = Field(description="YYYY-MM-DD")


class ClockAdvance(Strict):
    # The step's bound only keeps the number sane; where today may go is
    # `clock.check_offset`'s rule (a precise 400), the CLI's too.
    days: int = Field(ge=-2 * MAX_OFFSET_DAYS, le=2 * MAX_OFFSET_DAYS)


class RotateIn(Strict):
    announce: bool = Field(False, description="stage and announce new keys, keep the current ones")


class Health(BaseModel):
    status: str
