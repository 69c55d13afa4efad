"""Using a trained model: recommendations, a user's history, similar items, fold-in of a new user,
PCA projections of the embeddings and title search.

Every function takes a loaded `ncf.runs.Run` and RAW ids (as in the data; '42' and 42 both work for
numeric ids) and returns raw ids with titles and genres where the data has them. An unknown id raises
`UnknownIdError` naming it. Runs are shared read-only: nothing here changes `run.model` (fold-in
trains a one-user copy).

By concern: recommend.py (a known user's recommendations and history; title search), similar.py (item
vectors, similar items), newuser.py (fold-in, cold start from a new user's attributes), projection.py
(PCA, exact or randomized); common.py what they share (ids and titles, top k, one thread per query).
"""

from ncf.explore.newuser import POSITIVE_RATING, fold_in, positive_threshold, user_feature_specs
from ncf.explore.projection import RANDOMIZED_MIN_DIMS, Projection, pca, project
from ncf.explore.recommend import recommend, search_titles, user_history
from ncf.explore.similar import item_vectors, similar_items

__all__ = ["POSITIVE_RATING", "RANDOMIZED_MIN_DIMS", "Projection", "fold_in", "item_vectors", "pca",
           "positive_threshold", "project", "recommend", "search_titles", "similar_items", "user_feature_specs",
           "user_history"]
