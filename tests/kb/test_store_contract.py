"""One contract for every vector store backend: embedded Chroma and a real Chroma server.

Each test runs against both (haystack's document-store suite idea). The server is one shared
`chroma run` (fixture `chroma_server`), each test in a database of its own. The end-to-end test
ingests the same corpus with the fake embedders into both and compares ids and rankings.
"""

from __future__ import annotations

from pathlib import Path

import chromadb
import numpy as np
import pytest

from ingest.config import IngestSettings
from kb.index import KnowledgeBase
from kb.indexer import ingest
from kb.records import Filters
from kb.retriever import retrieve
from kb.settings import Settings
from kb.store import ChromaConnection, VectorStore, chroma_client
from tests.kb.test_indexer import PARAS, state, write_corpus

BACKENDS = ["embedded", pytest.param("server", marks=pytest.mark.integration)]
DIM = 8


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The test's settings, pointing at embedded Chroma or at a fresh database on the server."""
    if request.param == "server":
        server = request.getfixturevalue("chroma_server")
        return settings.model_copy(update={"chroma_url": server.new_url()})
    return settings


def unit(i: int) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i % DIM] = 1.0
    v[(i + 1) % DIM] = 0.5 * (i // DIM + 1)
    return v / np.linalg.norm(v)


def records(n: int) -> tuple[list[str], np.ndarray, list[dict]]:
    """n vectors over three documents, two kinds, two publishers and three years."""
    ids = [f"c{i:03d}:0-abcd" for i in range(n)]
    metas = [{"chunk_id": f"c{i:03d}", "doc_id": f"d{i % 3}", "source": f"d{i % 3}.txt",
              "kind": "glossary" if i % 4 == 0 else "body", "year": 2019 + i % 3,
              "publisher": "SCIO" if i % 2 else "Xinhua"} for i in range(n)]
    return ids, np.vstack([unit(i) for i in range(n)]), metas


def make_store(settings: Settings, name: str = "kb-test-contract") -> VectorStore:
    return VectorStore(ChromaConnection(settings), name)


def test_upsert_count_ids_and_vectors_round_trip(backend: Settings) -> None:
    store = make_store(backend)
    assert store.count() == 0 and store.ids() == set()
    ids, vectors, metas = records(12)
    store.upsert(ids, vectors, metas)
    assert store.count() == 12
    assert store.ids() == set(ids)
    in_d1 = {i for i, m in zip(ids, metas, strict=True) if m["doc_id"] == "d1"}
    assert store.ids(where={"doc_id": "d1"}) == in_d1
    got = store.vectors([ids[3], ids[7], "missing:0-0000"])
    assert set(got) == {ids[3], ids[7]}
    np.testing.assert_allclose(got[ids[3]], vectors[3], atol=1e-6)
    assert store.vectors([]) == {}


def test_re_adding_the_same_ids_is_idempotent(backend: Settings) -> None:
    store = make_store(backend)
    ids, vectors, metas = records(10)
    store.upsert(ids, vectors, metas)
    store.upsert(ids, vectors, metas)
    assert store.count() == 10
    # an upsert with a new vector replaces the old one, it does not add a second
    store.upsert([ids[0]], vectors[5:6], [metas[0]])
    assert store.count() == 10
    top = store.query(vectors[5], k=2)
    assert {h.chunk_id for h in top} == {"c000", "c005"}
    assert all(h.similarity == pytest.approx(1.0, abs=1e-5) for h in top)


def test_query_ranks_by_similarity_and_honours_where(backend: Settings) -> None:
    store = make_store(backend)
    assert store.query(unit(0), k=5) == []  # empty collection
    ids, vectors, metas = records(24)
    store.upsert(ids, vectors, metas)
    hits = store.query(vectors[9], k=5)
    assert hits[0].chunk_id == "c009" and hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert [h.similarity for h in hits] == sorted((h.similarity for h in hits), reverse=True)
    assert len(store.query(vectors[0], k=100)) == 24  # k larger than the collection
    cases = [
        Filters(doc_ids=("d1",)),
        Filters(doc_ids=("d0", "d2"), kinds=("body",)),
        Filters(publishers=("SCIO",), year_from=2020),
        Filters(year_from=2020, year_to=2020),
        Filters(kinds=("glossary",), year_to=2020, publishers=("Xinhua",)),
    ]
    for filters in cases:
        where = filters.chroma_where()
        expected = {
            m["chunk_id"] for m in metas
            if (not filters.doc_ids or m["doc_id"] in filters.doc_ids)
            and (not filters.kinds or m["kind"] in filters.kinds)
            and (not filters.publishers or m["publisher"] in filters.publishers)
            and (filters.year_from is None or m["year"] >= filters.year_from)
            and (filters.year_to is None or m["year"] <= filters.year_to)
        }
        assert expected, filters
        got = store.query(vectors[9], k=100, where=where)
        assert {h.chunk_id for h in got} == expected, filters
        assert {i for i in store.ids(where=where)} == {f"{c}:0-abcd" for c in expected}


def test_update_metadata_moves_a_vector_between_filters(backend: Settings) -> None:
    store = make_store(backend)
    ids, vectors, metas = records(6)
    store.upsert(ids, vectors, metas)
    moved = {**metas[0], "doc_id": "d9", "year": 2030}
    store.update_metadata([ids[0]], [moved])
    assert store.ids(where={"doc_id": "d9"}) == {ids[0]}
    assert ids[0] not in store.ids(where={"doc_id": "d0"})
    assert [h.chunk_id for h in store.query(vectors[0], 1, where={"year": {"$gte": 2030}})] == [
        "c000"]
    assert store.count() == 6


def test_delete_removes_only_the_given_ids(backend: Settings) -> None:
    store = make_store(backend)
    ids, vectors, metas = records(10)
    store.upsert(ids, vectors, metas)
    store.delete(ids[:4])
    assert store.ids() == set(ids[4:])
    store.delete(["never-stored:0-0000", ids[4]])  # unknown ids are ignored
    store.delete([])
    assert store.ids() == set(ids[5:])
    assert "c000" not in {h.chunk_id for h in store.query(vectors[0], k=10)}


def test_batches_and_pages_larger_than_one_request(backend: Settings,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(VectorStore, "BATCH", 4)
    monkeypatch.setattr(VectorStore, "PAGE", 3)
    store = make_store(backend)
    ids, vectors, metas = records(11)
    store.upsert(ids, vectors, metas)
    store.update_metadata(ids, metas)
    assert store.count() == 11
    assert store.ids() == set(ids)
    assert store.ids(where={"doc_id": "d0"}) == set(ids[0::3])
    store.delete(ids[:9])
    assert store.ids() == set(ids[9:])


def test_collection_names_are_valid_and_never_mix(backend: Settings) -> None:
    """Names come from the model and chunking settings (kb-<model>-<hash>): each is accepted
    by the backend and holds its own vectors."""
    other_chunking = backend.model_copy(
        update={"ingest": IngestSettings(chunk_words=backend.ingest.chunk_words + 40)}
    )
    names = {backend.index_name("minilm"), backend.index_name("e5"),
             other_chunking.index_name("minilm")}
    assert len(names) == 3
    connection = ChromaConnection(backend)
    stores = [VectorStore(connection, n) for n in sorted(names)]
    ids, vectors, metas = records(3)
    for i, store in enumerate(stores):
        store.upsert(ids[i:i + 1], vectors[i:i + 1], metas[i:i + 1])
    assert [s.ids() for s in stores] == [{ids[0]}, {ids[1]}, {ids[2]}]
    listed = {c.name for c in connection.client().list_collections()}
    assert names <= listed


def test_a_collection_deleted_behind_the_store_is_looked_up_again(backend: Settings) -> None:
    """A server restarted on a fresh path gives the collection a new id; the store must not
    keep failing on the old handle (NotFoundError), it looks the name up again."""
    store = make_store(backend)
    ids, vectors, metas = records(4)
    store.upsert(ids, vectors, metas)
    chroma_client(backend).delete_collection(store.name)
    assert store.count() == 0
    store.upsert(ids, vectors, metas)
    assert store.ids() == set(ids)
    if backend.chroma_url:  # a server wiped of its data loses the database as well
        admin = chromadb.AdminClient(chroma_client(backend).get_settings())
        admin.delete_database(backend.chroma_url.rsplit("/", 1)[1])
        assert store.ids() == set()
        store.upsert(ids, vectors, metas)
        assert store.count() == 4


QUERIES = [
    "How many people were relocated out of inhospitable areas?",
    "education support for students in poor counties",
    "microfinance loans without collateral",
    "basic medical insurance",
]


@pytest.mark.integration
def test_ingest_and_retrieve_through_the_server_match_embedded(
    tmp_path: Path, chroma_server, fake_embedders
) -> None:  # type: ignore[no-untyped-def]
    """The same corpus ingested into embedded Chroma and into the server: same chunk and vector
    ids, same rankings, same answers."""
    from kb.answer import answer

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_corpus(corpus)
    (corpus / "delta.txt").write_text(
        "Delta Review\n\nRelocated households received jobs in workshops near the new "
        "settlements. Loans and insurance were offered to 9.6 million relocated people.\n"
    )
    embedded = KnowledgeBase(Settings(data_dir=tmp_path / "embedded", corpus_dir=corpus),
                             embedders=fake_embedders)
    served = KnowledgeBase(Settings(data_dir=tmp_path / "served", corpus_dir=corpus,
                                    chroma_url=chroma_server.new_url()),
                           embedders=fake_embedders)
    for kbase in (embedded, served):
        report = ingest(kbase, progress=False)
        assert report.ok, report.errors
        assert sorted(report.added) == sorted([*PARAS, "delta.txt"])
    assert not (tmp_path / "served" / "chroma").exists()  # vectors live on the server only
    assert state(served) == state(embedded)
    assert served.store("minilm").count() == embedded.store("minilm").count() > 4
    for query in QUERIES:
        for filters in (Filters(), Filters(doc_ids=("alpha", "delta"))):
            a = retrieve(query, embedded, filters)
            b = retrieve(query, served, filters)
            assert [h.chunk.chunk_id for h in a] == [h.chunk.chunk_id for h in b], query
            assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-6)
        assert answer(query, served).text == answer(query, embedded).text


def test_ingest_refills_a_store_that_lost_its_vectors(backend: Settings, fake_embedders) -> None:  # type: ignore[no-untyped-def]
    """A Chroma restarted on an empty path: the next ingest sees the vectors missing and puts
    them back (from the embedding cache), ending where it was."""
    write_corpus(backend.corpus_dir)
    kbase = KnowledgeBase(backend, embedders=fake_embedders)
    assert ingest(kbase, progress=False).ok
    before = state(kbase)
    client = chroma_client(backend)
    for name in kbase.embedder_names:
        client.delete_collection(backend.index_name(name))
    assert kbase.store("minilm").count() == 0  # looked up again, empty: not an error
    embedded_before = fake_embedders["minilm"].passages_embedded
    report = ingest(kbase, progress=False)
    assert report.ok and sorted(report.updated) == sorted(PARAS)
    assert state(kbase) == before
    if getattr(backend.embedding, "cache", False):  # the embedding cache (kb/embcache.py)
        assert fake_embedders["minilm"].passages_embedded == embedded_before
