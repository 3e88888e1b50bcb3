"""`kb ingest` with the fake embedders, for tests that run it as a separate process (killed
with SIGKILL half-way, or run as a user who cannot write the data directory).

    python -m tests.faults.run_ingest DELAY [kb options...] ingest --quiet

Each embedding call prints "embedding" and then sleeps DELAY seconds, so a test can kill the
process in the middle of an ingest.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import numpy as np

from app import cli
from kb import index
from tests.fakes import FakeEmbedder


class SlowFake(FakeEmbedder):
    def __init__(self, name: str, delay: float):
        super().__init__(name)
        self.delay = delay

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        print("embedding", flush=True)
        time.sleep(self.delay)
        return super().embed_passages(texts)


def main() -> None:
    delay = float(sys.argv[1])
    fakes = {name: SlowFake(name, delay) for name in ("minilm", "e5")}
    index.get_embedder = lambda name, batch_size=32: fakes[name]  # type: ignore[assignment]
    cli.main(sys.argv[2:])


if __name__ == "__main__":
    main()
