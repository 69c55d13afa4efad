"""NCF Lab core: data, models, training, evaluation, saved runs. Never imports Streamlit."""

__version__ = "0.1.0"
