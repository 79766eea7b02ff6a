"""histodistill: distil a private medical image dataset into a small, shareable synthetic training set.

All logic lives in this package as small, typed functions; the Snakemake rules only wire files together. One
subpackage per stage, in the order a run goes through them, over a shared base:

- `base`: errors, atomic I/O, checkpoints, image normalisation, precision and compilation, GPU lease, the config's
  schema and the job runner. It imports no stage.
- `data`: the embedded datasets, MedMNIST, a user's own data, the splits.
- `generator`: the latent diffusion model, the synthetic pool, DP-SGD.
- `classifier`: ConvNet and ResNet18, DSA, training and evaluation (embedders and evaluators).
- `selection`: embedder, graphs, Infomap communities, InfoDist, `infodist_plus`, the baselines, subset files.
- `distill`: DM, DC/DSA and MTT.
- `privacy`: the audit, the release test, the filter, the gate and its tables.
- `reporting`: figures, tables, the summary, shareable packages.

`workflow` sits above the stages: the config checks the schema cannot express and the Snakefile's target lists.
Each stage re-exports its public names (`from histodistill.selection import build_graph`).
"""

__version__ = "0.1.0"
