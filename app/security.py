"""Secrets at rest and tokens in flight: API keys, password hashes, signed bearer tokens."""

import functools
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.config import Settings
from app.models import utcnow

API_KEY_PREFIX = "fsk_"
TOKEN_ISSUER = "flowing-sentinel"
_ALGORITHM = "HS256"


class TokenKind(StrEnum):
    RIDER = "rider"
    STAFF = "staff"


@dataclass(frozen=True)
class TokenClaims:
    kind: TokenKind
    subject: uuid.UUID
    expires_at: datetime
    issued_at: datetime


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def looks_like_api_key(token: str) -> bool:
    return token.startswith(API_KEY_PREFIX)


def new_password() -> str:
    return secrets.token_urlsafe(12)


@functools.cache
def _hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)


def hash_password(password: str, settings: Settings) -> str:
    return _hasher(settings.argon2_time_cost, settings.argon2_memory_kib).hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    # Verification reads the cost from the hash itself, so any hasher will do.
    try:
        return _hasher(1, 8).verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash(time_cost: int, memory_kib: int) -> str:
    return _hasher(time_cost, memory_kib).hash("no such user")


def burn_password_check(password: str, settings: Settings) -> None:
    """Spend what a real check costs, so a wrong username does not reveal itself by speed."""
    verify_password(_dummy_hash(settings.argon2_time_cost, settings.argon2_memory_kib), password)


def issue_token(
    *, kind: TokenKind, subject: uuid.UUID, ttl: timedelta, settings: Settings
) -> IssuedToken:
    now = utcnow()
    expires_at = (now + ttl).replace(microsecond=0)
    claims = {
        "iss": TOKEN_ISSUER,
        "typ": kind.value,
        "sub": str(subject),
        # To the microsecond: a sign-out revokes what was issued before it, to the instant.
        "iat": now.timestamp(),
        "exp": int(expires_at.timestamp()),
        "jti": secrets.token_hex(8),
    }
    return IssuedToken(jwt.encode(claims, settings.secret_key, algorithm=_ALGORITHM), expires_at)


def decode_token(token: str, settings: Settings) -> TokenClaims | None:
    """The claims of a valid, unexpired token we signed; None for anything else."""
    claims = _verified(token, settings.secret_key)
    if claims is None or claims.expires_at <= datetime.now(UTC):
        return None
    return claims


# A rider's app sends the same token with every report: verify it once (an HMAC and a
# JSON parse per request saved), and check only its expiry at each use. Only the
# verdict of the signature is kept, by the token's exact text and the key.
@functools.lru_cache(maxsize=16384)
def _verified(token: str, secret_key: str) -> TokenClaims | None:
    try:
        claims = jwt.decode(
            token,
            secret_key,
            algorithms=[_ALGORITHM],
            issuer=TOKEN_ISSUER,
            options={"require": ["exp", "sub", "typ"], "verify_exp": False},
        )
        return TokenClaims(
            TokenKind(claims["typ"]),
            uuid.UUID(claims["sub"]),
            datetime.fromtimestamp(claims["exp"], UTC),
            datetime.fromtimestamp(float(claims.get("iat", 0)), UTC),
        )
    except (
        jwt.PyJWTError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        OverflowError,
        OSError,
    ):
        return None
