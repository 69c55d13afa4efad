"""The data layer: any ratings source -> one indexed `Dataset` -> evaluation `Split`s.

`load(source)` takes "synthetic", a MovieLens release name (see `RELEASES`), or a path: a
.csv/.tsv/.dat/.txt table, a .zip, a folder in GroupLens' layout, or He et al.'s NAME.train.rating.
"""

from ncf.data.dataset import Dataset, PublishedTest, Vocab
from ncf.data.files import ColumnGuess, detect_columns
from ncf.data.movielens import RELEASES, Release, release_status
from ncf.data.sources import format_summary, load, load_split, load_upload, max_upload_bytes
from ncf.data.split import Split, filter_min_interactions, leave_one_out, make_split, ratio_split
from ncf.data.synthetic import synthetic

__all__ = ["RELEASES", "ColumnGuess", "Dataset", "PublishedTest", "Release", "Split", "Vocab", "detect_columns",
           "filter_min_interactions", "format_summary", "leave_one_out", "load", "load_split", "load_upload", "make_split",
           "max_upload_bytes", "ratio_split", "release_status", "synthetic"]
