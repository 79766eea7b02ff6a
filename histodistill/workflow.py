"""What the Snakefile needs across stages: config checks the schema cannot express, names and target lists.

This module sits above the stage subpackages (it asks data, distill and generator about a config); the stages
never import it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from histodistill.base.config import SCHEMA, dataset_id, with_schema_defaults
from histodistill.base.errors import HistodistillError
from histodistill.generator.dp import dp_refusals

POOL_METHODS = ("infodist", "infodist_plus", "random_synthetic", "kmeans", "herding", "kcenter")
REAL_METHODS = ("random_real", "full_real")
DISTILL_METHODS = ("dm", "dc", "dsa", "mtt", "dm_refine")


# distillers that start from a selection of the synthetic pool (`distill.dm_refine.start`), so need the pool
POOL_STARTED = ("dm_refine",)


def uses_pool(config: dict[str, Any]) -> bool:
    """Whether a run makes the synthetic pool: a pool selector, a distiller started from one, or an ablation."""
    methods = set(config["select"]["methods"])
    return bool(methods & set(POOL_METHODS + POOL_STARTED)) or bool(ablation_variants(config))


def n_classes_of(name: str, dataset: dict[str, Any] | None = None) -> int:
    """Number of classes, known before any data is loaded (so per-class jobs can be declared); a custom dataset
    (`dataset` = the config's dataset block) counts its class folders or reads its .npz labels."""
    if name == "custom":
        return len(class_names_of({"dataset": dataset}))
    if name in ("digits", "mnist5k"):  # the embedded datasets (data.EMBEDDED)
        return 10
    from histodistill.data.real import medmnist_info

    return len(medmnist_info(name)["label"])


def graph_setting_names() -> set[str]:
    """The keys of the schema's `graph:` block (with a default or without), the keys a graph override may set."""
    import yaml

    return set(yaml.safe_load(SCHEMA.read_text())["properties"]["graph"]["properties"])


def check_mtt_memory(config: dict[str, Any], n_classes: int) -> None:
    """Refuse an MTT setting whose unrolled student steps cannot fit `distill.mtt.max_memory_gb` at the largest IPC."""
    from histodistill.distill.mtt import mtt_unroll_bytes

    mtt = config["distill"]["mtt"]
    images = max(config["select"]["ipc"]) * n_classes
    batch = min(mtt["batch_syn"] or images, images)
    experts = mtt["experts"]
    size = config["dataset"]["size"]
    need = mtt_unroll_bytes(batch, mtt["syn_steps"], size, experts["depth"], experts["width"]) / 1e9
    if need > mtt["max_memory_gb"]:
        raise HistodistillError(
            f"distill.mtt.batch_syn: {batch} images per student step over {mtt['syn_steps']} unrolled steps need "
            f"about {need:.3g} GB, above distill.mtt.max_memory_gb {mtt['max_memory_gb']:g}; lower "
            "distill.mtt.batch_syn or distill.mtt.syn_steps"
        )


def check_config(config: dict[str, Any]) -> None:
    """Checks the schema cannot express; each raises one clear error naming the key."""
    from histodistill.data.real import check_dataset, medmnist_filename

    ds = config["dataset"]
    refusals = dp_refusals(config)
    if refusals:
        raise HistodistillError(refusals[0])
    if ds["name"] == "custom":
        check_custom_config(config)
    else:
        check_dataset(ds["name"], ds["size"])
    if ds["name"] not in ("digits", "mnist5k", "custom") and not ds["download"]:
        path = Path(ds["data_dir"]).expanduser() / medmnist_filename(ds["name"], ds["size"])
        if not path.exists():
            from histodistill.data.real import medmnist_fetch_hint

            raise HistodistillError(
                f"MedMNIST file {path} not found. {medmnist_fetch_hint(ds['name'], ds['size'], path.parent)}"
            )
    pool_per_class = config["pool"]["shards"] * config["pool"]["per_class"]
    too_big = [ipc for ipc in config["select"]["ipc"] if ipc > pool_per_class]
    if too_big and uses_pool(config):
        raise HistodistillError(
            f"select.ipc: IPC {max(too_big)} is larger than the synthetic pool per class ({pool_per_class} = "
            "pool.shards × pool.per_class); lower select.ipc or raise pool.per_class"
        )
    full = with_schema_defaults(config)  # the checks below read keys a config may leave to the schema
    pool_filter = full["select"]["privacy_filter"]
    filtered = [m for m in config["select"]["methods"] if m in POOL_METHODS and m not in pool_filter["unfiltered"]]
    if uses_pool(config) and filtered and pool_filter["enabled"] and not full["privacy"]["dp"]["enabled"]:
        # the filter removes about its quantile's share of a pool that resembles unseen real images, and more of one
        # that copies training images: a pool that cannot spare that share fails only after the generator (hours)
        left = math.floor(pool_per_class * (1.0 - pool_filter["quantile"]))
        if left < max(config["select"]["ipc"]):
            raise HistodistillError(
                f"select.ipc: IPC {max(config['select']['ipc'])} needs more pool images per class than the "
                f"{left} of {pool_per_class} (pool.shards × pool.per_class) expected to survive the privacy filter "
                f"(select.privacy_filter.quantile {pool_filter['quantile']}); raise pool.per_class or lower select.ipc"
            )
    if len(set(config["select"]["ipc"])) != len(config["select"]["ipc"]):
        raise HistodistillError(f"select.ipc: duplicate values in {config['select']['ipc']}")
    known = graph_setting_names()
    unknown = {
        f"{name}.{key}"
        for name, overrides in config.get("ablation", {}).get("graphs", {}).items()
        for key in overrides
        if key not in known
    }
    unknown |= {f"select.infodist_plus.graph.{k}" for k in plus_settings(config)["graph"] if k not in known}
    if unknown:
        raise HistodistillError(f"unknown graph settings {sorted(unknown)}; use keys of graph:")
    if PLUS_GRAPH in config.get("ablation", {}).get("graphs", {}):
        raise HistodistillError(f"ablation.graphs: the name {PLUS_GRAPH!r} is reserved for select.infodist_plus.graph")
    for method in set(DISTILL_METHODS) & set(config["select"]["methods"]):
        block = config.get("distill", {}).get("dm" if method == "dm_refine" else method, {})
        net_depth = block.get("experts", block).get("depth", 0)
        if ds["size"] < 2**net_depth:
            raise HistodistillError(
                f"distill.{method}.depth: {net_depth} pooling stages need images of at least {2**net_depth}px"
            )
    if "mtt" in config["select"]["methods"]:
        check_mtt_memory(full, n_classes_of(ds["name"], ds))
    depth = config["evaluate"]["depth"]
    if ds["size"] < 2**depth:
        raise HistodistillError(f"evaluate.depth: {depth} pooling stages need images of at least {2**depth}px")
    ae_down = 2 ** (len(config["generator"]["autoencoder"]["block_out_channels"]) - 1)
    if ds["size"] % ae_down:
        raise HistodistillError(
            f"generator.autoencoder.block_out_channels: {len(config['generator']['autoencoder']['block_out_channels'])} "
            f"blocks downsample by {ae_down}, which does not divide dataset.size {ds['size']}"
        )
    figures = config.get("figures", {})
    unknown_subsets = sorted(set(figures.get("subsets") or []) - set(subset_names(config)))
    if unknown_subsets:
        raise HistodistillError(
            f"figures.subsets: {unknown_subsets} are not subsets of this run; choose from {subset_names(config)}"
        )
    n_classes = n_classes_of(ds["name"], ds)
    if figures.get("class", 0) >= n_classes:
        raise HistodistillError(f"figures.class: {figures['class']} but the dataset has classes 0–{n_classes - 1}")


def figure_subsets(config: dict[str, Any]) -> list[str]:
    """The subsets drawn beside the real data and the pool: `figures.subsets`, or by default infodist and
    infodist_plus at the largest IPC (those the run has)."""
    chosen = config.get("figures", {}).get("subsets")
    if chosen:
        return list(chosen)
    top = max(config["select"]["ipc"])
    names = subset_names(config)
    return [s for s in (f"infodist_ipc{top}", f"infodist_plus_ipc{top}") if s in names]


def figure_graphs(config: dict[str, Any]) -> dict[str, str]:
    """Subset → the graph key whose communities chose it, for the figure subsets picked from a community graph
    (infodist: the run's graph; infodist_plus: its own graph)."""
    net = config["embed"]["net"]
    keys = {"infodist": net, "infodist_plus": f"{net}+{PLUS_GRAPH}"}
    out = {}
    for s in figure_subsets(config):
        method = s.rsplit("_ipc", 1)[0]
        if method in keys:
            out[s] = keys[method]
    return out


def class_names_of(config: dict[str, Any]) -> list[str]:
    """Class names, known at parse time: a custom folder's subfolder names (or `dataset.classes` of an .npz), the
    MedMNIST labels, or the digits."""
    ds = config["dataset"]
    if ds["name"] == "custom":
        from histodistill.data.custom import split_plan

        return split_plan(ds)[1]
    from histodistill.data.real import class_names

    return class_names(ds["name"], n_classes_of(ds["name"]))


CUSTOM_KEYS = ("id", "path", "classes", "channels", "aspect", "groups")


def data_params(config: dict[str, Any]) -> dict[str, Any]:
    """The dataset block as the data rule's parameter: without the custom-data keys for a built-in dataset, so that
    adding those keys did not make earlier runs' data (and so their protected generator) stale."""
    ds = config["dataset"]
    if ds["name"] != "custom":
        return {k: v for k, v in ds.items() if k not in CUSTOM_KEYS}
    # `groups` came later: left unset it is left out, so earlier runs' data (and protected generators) stay current
    return {k: v for k, v in ds.items() if not (k == "groups" and v is None)}


def real_images_needed_per_class(config: dict[str, Any]) -> tuple[int, str]:
    """(training images each class needs, why): the largest IPC when random real subsets are drawn, else one."""
    if "random_real" in config["select"]["methods"]:
        return max(config["select"]["ipc"]), f"select.ipc {max(config['select']['ipc'])} with random_real"
    return 1, "training"


def check_custom_config(config: dict[str, Any]) -> None:
    """A custom dataset: an id that cannot collide with a built-in dataset's results, then the data themselves
    (layout, labels, counts after the split; every image file while they differ from the imported ones)."""
    from histodistill.data.custom import check_custom_dataset, imported_fingerprint, source_fingerprint
    from histodistill.data.real import EMBEDDED

    ds = config["dataset"]
    if not ds.get("id"):
        raise HistodistillError(
            "dataset.id: required for dataset.name 'custom'; name your dataset (letters, digits, '-', '_'): results go "
            "to results/{id}_{size}/"
        )
    if ds["id"] in (*EMBEDDED, "custom") or ds["id"].lower().endswith("mnist"):  # (importing medmnist costs 5 s)
        raise HistodistillError(
            f"dataset.id: {ds['id']!r} could be the name of a built-in dataset (those and names ending in 'mnist' are "
            "reserved); choose another so that results never mix"
        )
    needed, reason = real_images_needed_per_class(config)
    imported = Path(config["results"]) / dataset_id(config) / "data" / "real.npz"
    check_custom_dataset(ds, needed, reason, check_files=imported_fingerprint(imported) != source_fingerprint(ds))


def ablation_variants(config: dict[str, Any]) -> list[dict[str, str]]:
    """InfoDist variants of the ablation block: embedder × graph setting × rank (empty when the block is empty).

    Each variant is a method named `infodist-{net}-{graph}-{rank}`; its graph lives under `graph/{net}+{graph}/`.
    """
    ab = config.get("ablation", {})
    if not (ab.get("embedders") or ab.get("graphs") or ab.get("ranks")):
        return []
    nets = ab.get("embedders") or [config["embed"]["net"]]
    graphs = list(ab.get("graphs") or {"default": {}})
    ranks = ab.get("ranks") or [config["select"]["rank"]]
    return [
        {"method": f"infodist-{net}-{g}-{r}", "net": net, "graph": g, "rank": r, "key": f"{net}+{g}"}
        for net in nets
        for g in graphs
        for r in ranks
    ]


PLUS_GRAPH = "plus"


def plus_settings(config: dict[str, Any]) -> dict[str, Any]:
    """`select.infodist_plus` with the schema's defaults filled in (also for configs that omit the block)."""
    block = config.get("select", {}).get("infodist_plus", {}) or {}
    defaults = {
        "graph": {"knn": 10},
        "pick": "facility",
        "quota": "auto",
        "merge": True,
        "certainty_weight": 0.5,
        "certainty_decay": 4.0,
        "kernel": "heat",
        "certainty_gate": 0.0,
    }
    settings = {**defaults, **block}
    if settings["quota"] == "auto":  # the schema's default: no community quota for facility, sizes for the others
        settings["quota"] = "free" if settings["pick"] == "facility" else "size"
    return settings


def graph_settings(config: dict[str, Any], graph_key: str) -> dict[str, Any]:
    """The graph settings of a graph key: `{net}` is the main graph, `{net}+plus` the graph of `infodist_plus`,
    `{net}+{name}` an ablation setting."""
    _, _, name = graph_key.partition("+")
    if name == PLUS_GRAPH:
        overrides = plus_settings(config)["graph"]
    else:
        overrides = config.get("ablation", {}).get("graphs", {}).get(name, {}) if name else {}
    return {**config["graph"], **overrides}


def graph_keys(config: dict[str, Any]) -> list[str]:
    """Every graph the run builds: the main one (if InfoDist is selected) and one per ablation net × setting."""
    keys = [config["embed"]["net"]] if "infodist" in config["select"]["methods"] else []
    if "infodist_plus" in config["select"]["methods"]:
        keys.append(f"{config['embed']['net']}+{PLUS_GRAPH}")
    for v in ablation_variants(config):
        if v["key"] not in keys:
            keys.append(v["key"])
    return keys


def subset_names(config: dict[str, Any]) -> list[str]:
    """`{method}_ipc{ipc}` for every configured method, ablation variant and IPC; full real data is `full_real_ipcall`."""
    names = []
    for method in config["select"]["methods"]:
        if method == "full_real":
            names.append("full_real_ipcall")
        else:
            names.extend(f"{method}_ipc{ipc}" for ipc in config["select"]["ipc"])
    for v in ablation_variants(config):
        names.extend(f"{v['method']}_ipc{ipc}" for ipc in config["select"]["ipc"])
    return names
