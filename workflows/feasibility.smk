# The feasibility experiment (arXiv 2407.14429): the whole workflow once per dataset, in one snakemake call, then
# random-real accuracy against every method's accuracy across datasets. Run:
#   snakemake -s workflows/feasibility.smk --configfile configs/feasibility.yaml --cores all
import copy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir).parent))

from histodistill.workflow import dataset_id


configfile: "config.yaml"


FEASIBILITY = config.get("feasibility", {})
if not FEASIBILITY.get("datasets"):
    raise WorkflowError(
        "histodistill config error: feasibility.datasets: list the datasets to compare, e.g. "
        "[{name: digits, size: 16}, {name: mnist5k, size: 28}] (see configs/feasibility.yaml)"
    )
RUNS = {}
for i, entry in enumerate(FEASIBILITY["datasets"]):
    if not {"name", "size"} <= set(entry):
        raise WorkflowError(f"histodistill config error: feasibility.datasets[{i}]: give both name and size")
    run_config = copy.deepcopy({k: v for k, v in config.items() if k != "feasibility"})
    run_config["dataset"] = {**run_config.get("dataset", {}), **entry}
    RUNS[f"{dataset_id(run_config)}_"] = run_config  # module name = rule-name prefix, e.g. digits_16_data

for run_name, run_config in RUNS.items():

    module:
        name: run_name
        snakefile:
            "../Snakefile"
        config:
            run_config

    use rule * from run_name as run_name*


rule feasibility:
    default_target: True
    input:
        f"{config['results']}/feasibility/feasibility.csv",
        f"{config['results']}/feasibility/feasibility.png",


rule feasibility_table:
    input:
        **{run_name.rstrip("_"): f"{c['results']}/{dataset_id(c)}/tables/summary.csv" for run_name, c in RUNS.items()},
    output:
        csv=f"{config['results']}/feasibility/feasibility.csv",
        correlations=f"{config['results']}/feasibility/correlations.csv",
        markdown=f"{config['results']}/feasibility/feasibility.md",
        figure=report(
            f"{config['results']}/feasibility/feasibility.png",
            caption="../report/feasibility.rst",
            category="5. Feasibility",
        ),
    log:
        f"{config['results']}/feasibility/feasibility.log",
    conda:
        "../envs/histodistill.yaml"
    script:
        "../workflow_scripts/feasibility_table.py"
