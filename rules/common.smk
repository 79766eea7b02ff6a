import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("8.0")

# The package lives beside the Snakefile; make it importable without an install.
sys.path.insert(0, str(Path(workflow.basedir)))

from histodistill.errors import HistodistillError
from histodistill.workflow import check_config, dataset_id, n_classes_of, subset_names

validate(config, schema="../schemas/config.schema.yaml")
try:
    check_config(config)
except HistodistillError as exc:
    raise WorkflowError(f"histodistill config error: {exc}")

DS = dataset_id(config)
RESULTS = f"{config['results']}/{DS}"
CLASSES = list(range(n_classes_of(config["dataset"]["name"])))
SHARDS = list(range(config["pool"]["shards"]))
NET = config["embed"]["net"]
SUBSETS = subset_names(config)
SAMPLE_GRIDS = [s for s in SUBSETS if not s.startswith(("full_real", "random_real"))]
HEAVY_THREADS = max(1, workflow.cores if isinstance(workflow.cores, int) else 1)
