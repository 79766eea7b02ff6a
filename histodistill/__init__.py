"""histodistill: distil a private medical image dataset into a small, shareable synthetic training set.

All logic lives in this package as small, typed functions; the Snakemake rules only wire files together.
"""

__version__ = "0.1.0"
