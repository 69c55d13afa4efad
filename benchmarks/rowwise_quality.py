"""ML-1M quality of the default recipe with row-wise AdamW forced on (the trainer picks it only for
large tables): `NCF_DATA_DIR=... python benchmarks/rowwise_quality.py SEED` prints the CLI's --json line."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ncf.train.fitter  # noqa: E402

ncf.train.fitter.ROWWISE_ROWS_PER_SAMPLE = 0
from ncf.cli import main  # noqa: E402

sys.exit(main(["train", "--data", "ml-1m", "--seed", sys.argv[1], "--json"]))
