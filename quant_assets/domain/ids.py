"""Content-derived identifiers."""

import hashlib
import json

from pydantic import BaseModel


def canonical_json(model: BaseModel) -> str:
    """Return the model's JSON with sorted keys and no whitespace."""
    return json.dumps(model.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def content_id(model: BaseModel) -> str:
    """Return a stable 16-hex-digit id derived from the model's canonical JSON."""
    return hashlib.sha256(canonical_json(model).encode("utf-8")).hexdigest()[:16]


def digest_of(parts: list[str]) -> str:
    """Return the sha256 hex digest of an ordered list of strings (e.g. child hashes)."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode("utf-8"))
        hasher.update(b"\n")
    return hasher.hexdigest()
