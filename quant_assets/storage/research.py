"""Research records in the warehouse: strategy specs and feature-slice versions."""

from datetime import UTC, datetime

from quant_assets.domain.errors import SpecValidationError
from quant_assets.domain.strategy import StrategySpec
from quant_assets.storage.warehouse import Warehouse

SPEC_REGISTERED = "registered"
SPEC_VALIDATED = "validated"


def save_spec(warehouse: Warehouse, spec: StrategySpec, status: str = SPEC_REGISTERED) -> str:
    """Store a spec under its content id (re-saving the same spec keeps its first record)."""
    now = datetime.now(UTC)
    with warehouse.connect() as con:
        con.execute(
            "INSERT INTO strategy_specs VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (spec_id) DO NOTHING",
            [spec.spec_id, spec.name, spec.template, spec.model_dump_json(), status, now, None],
        )
    return spec.spec_id


def mark_spec_validated(warehouse: Warehouse, spec_id: str) -> None:
    """Record that a spec passed its pre-flight checks."""
    with warehouse.connect() as con:
        con.execute(
            "UPDATE strategy_specs SET status = ?, validated_at = ? WHERE spec_id = ?",
            [SPEC_VALIDATED, datetime.now(UTC), spec_id],
        )


def load_spec(warehouse: Warehouse, spec_id: str) -> StrategySpec:
    """Return a stored spec.

    Raises:
        SpecValidationError: if no spec has this id.
    """
    with warehouse.connect() as con:
        row = con.execute(
            "SELECT spec_json FROM strategy_specs WHERE spec_id = ?", [spec_id]
        ).fetchone()
    if row is None:
        raise SpecValidationError(
            f"spec '{spec_id}' is not registered; add it with `quant-assets specs add FILE.yaml`"
        )
    return StrategySpec.model_validate_json(row[0])


def list_specs(warehouse: Warehouse) -> list[tuple[str, str, str, str]]:
    """Return (spec_id, name, template, status) of every stored spec, oldest first."""
    if not warehouse.path.exists():
        return []
    with warehouse.connect() as con:
        rows = con.execute(
            "SELECT spec_id, name, template, status FROM strategy_specs ORDER BY registered_at"
        ).fetchall()
    return [(str(a), str(b), str(c), str(d)) for a, b, c, d in rows]


def feature_slice_digest(warehouse: Warehouse, instrument: str) -> str | None:
    """Return the input digest of the stored feature slice of an instrument, if any."""
    with warehouse.connect() as con:
        row = con.execute(
            "SELECT input_digest FROM feature_slices WHERE instrument = ?", [instrument]
        ).fetchone()
    return None if row is None else str(row[0])


def save_feature_slice_record(
    warehouse: Warehouse, instrument: str, input_digest: str, rows: int, columns: list[str]
) -> None:
    """Record the version of an instrument's freshly computed feature slice."""
    with warehouse.connect() as con:
        con.execute(
            "INSERT OR REPLACE INTO feature_slices VALUES (?, ?, ?, ?, ?)",
            [instrument, input_digest, rows, ",".join(columns), datetime.now(UTC)],
        )
