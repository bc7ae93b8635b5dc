"""Every AnnData obs/obsm/layer/uns key the package reads or writes, in one place."""

from __future__ import annotations

# Cell Painting metadata (CellProfiler / pycytominer conventions)
PLATE = "Metadata_Plate"
WELL = "Metadata_Well"
SITE = "Metadata_Site"
META_PREFIX = "Metadata_"
COMPARTMENTS = ("Cells", "Cytoplasm", "Nuclei")

# scGeneScope-style treatment columns (the defaults of the CLI)
SAMPLE_ID = "Sample_ID"
TREATMENT = "Treatment"
REPLICATE = "Replicate"
COMPOUND = "compound"
DOSE = "dose"

# columns PhenoSeq adds
GROUP = "phenoseq_group"  # the pairing group of a row (pair-key values joined by GROUP_SEP)
GROUP_SEP = "|"
ROLE = "phenoseq_role"  # split role of a group: train / val / calib / test / unused
SOURCE = "phenoseq_source"  # file a row was read from (multi-file readers)

# layers / obsm
LOG1P = "log1p"
COUNTS = "counts"
LATENT = "X_phenoseq"

# uns
UNS = "phenoseq"  # provenance dict: reader, kind, seed, parameters
EXPRESSION_KIND = "expression_kind"

ROLES = ("train", "val", "calib", "test")
