"""The data layer: any ratings source -> one indexed `Dataset` -> evaluation `Split`s."""

from ncf.data.dataset import Dataset, PublishedTest, Vocab
from ncf.data.split import Split, filter_min_interactions, leave_one_out, make_split, ratio_split
from ncf.data.synthetic import synthetic

__all__ = ["Dataset", "PublishedTest", "Split", "Vocab", "filter_min_interactions", "leave_one_out",
           "make_split", "ratio_split", "synthetic"]
