"""The models not fitted by gradient descent: most-popular, EASE, iALS, item-kNN and PureSVD, one file
each on the shared `Classical` contract (base.py). `ncf.registry` names each class by its module path;
the names below are re-exported for callers that import them from `ncf.classical`, and a new model
need not be added here."""

from ncf.classical.base import Classical, interaction_matrix
from ncf.classical.ease import EASE
from ncf.classical.ials import IALS
from ncf.classical.itemknn import ItemKNN
from ncf.classical.pop import ItemPop
from ncf.classical.puresvd import PureSVD

__all__ = ["EASE", "IALS", "Classical", "ItemKNN", "ItemPop", "PureSVD", "interaction_matrix"]
