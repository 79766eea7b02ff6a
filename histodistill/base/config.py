"""The config's schema (validation, and the config with the schema's defaults filled in) and the run's name."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from .errors import HistodistillError


def check_schema(config: dict[str, Any], schema_path: str | os.PathLike) -> None:
    """Validate against the JSON schema with one line per problem, naming the key (snakemake's own validation
    prints the whole schema); defaults are filled in afterwards by snakemake.utils.validate."""
    import jsonschema
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(config), key=lambda e: list(map(str, e.path)))
    if errors:
        lines = [f"{'.'.join(map(str, e.path)) or '(top level)'}: {e.message}" for e in errors]
        raise HistodistillError("invalid config (see schemas/config.schema.yaml):\n  " + "\n  ".join(lines))


SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


def config_with_defaults(path: str | os.PathLike) -> dict[str, Any]:
    """A config file as the workflow sees it: validated against schemas/config.schema.yaml, schema defaults filled in
    (for scripts outside the workflow, such as benchmarks/)."""
    import yaml

    return with_schema_defaults(yaml.safe_load(Path(path).read_text()))


def with_schema_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of a (valid) config with the schema's defaults filled in, as snakemake's validation fills them."""
    import copy

    from snakemake.utils import validate

    full = copy.deepcopy(config)
    validate(full, str(SCHEMA), set_default=True)
    return full


def dataset_id(config: dict[str, Any]) -> str:
    """`{name}_{size}`, e.g. digits_16 or pathmnist_64; for your own data `{dataset.id}_{size}`; a DP run (privacy.dp)
    adds `_dp{epsilon}`, e.g. digits_16_dp10."""
    name = config["dataset"]["id"] if config["dataset"]["name"] == "custom" else config["dataset"]["name"]
    dp = config.get("privacy", {}).get("dp", {})
    suffix = f"_dp{epsilon_label(float(dp['epsilon']))}" if dp.get("enabled", False) else ""
    return f"{name}_{config['dataset']['size']}{suffix}"


def epsilon_label(epsilon: float) -> str:
    """`10`, `0.5`: ε as it appears in a run's directory name."""
    return f"{epsilon:g}" if math.isfinite(epsilon) else "inf"
