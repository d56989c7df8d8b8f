"""CandidateStore: normalised once at insert, routes like from_arrays, typed errors, thread-safe (issue 16, item 3)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests._routers import NOW, strong_model
from tinydancer import CandidateStore, InvalidInputError, Router, RouterConfig, RoutingRequest, RoutingResponse
from tinydancer.model.candidate_features import cosine_similarity
from tinydancer.routing.batch import ALIGNMENT_BYTES

D = 16


@pytest.fixture
def router(tmp_path: Path) -> Router:
    return Router(
        RouterConfig(
            model_path=str(strong_model(tmp_path / "m.safetensors")), confidence_threshold=0.6, max_uncertainty=0.9
        )
    )


def candidates(n: int, seed: int = 0, metadata: bool = True) -> dict[str, Any]:
    """Columns of ``n`` random candidates, as ``from_arrays`` and ``upsert_many`` take them."""
    rng = np.random.default_rng(seed)
    langs = ("en", "de", "fr")
    return {
        "ids": [f"c{i}" for i in range(n)],
        "embeddings": rng.normal(size=(n, D)).astype(np.float32) * rng.uniform(0.1, 10, (n, 1)).astype(np.float32),
        "created_at": [None if i % 5 == 0 else NOW - 37.5 * i for i in range(n)],
        "access_count": rng.integers(0, 1000, n).tolist(),
        "success_rate": rng.uniform(0, 1, n).tolist(),
        "metadata": [{"lang": langs[i % 3], "tier": i % 2} if metadata and i % 4 else None for i in range(n)],
    }


def filled(data: dict[str, Any], **kwargs: Any) -> CandidateStore:
    store = CandidateStore(D, **kwargs)
    store.upsert_many(
        data["ids"], data["embeddings"], created_at=data["created_at"], access_count=data["access_count"],
        success_rate=data["success_rate"], candidate_metadata=data["metadata"],
    )  # fmt: skip
    return store


def from_arrays(query: np.ndarray, data: dict[str, Any], ids: list[str], meta: Any = None) -> RoutingRequest:
    index = {cid: i for i, cid in enumerate(data["ids"])}
    rows = [index[c] for c in ids]
    return RoutingRequest.from_arrays(
        query, data["embeddings"][rows], ids=ids, created_at=[data["created_at"][r] for r in rows],
        access_count=[data["access_count"][r] for r in rows], success_rate=[data["success_rate"][r] for r in rows],
        metadata=meta, candidate_metadata=[data["metadata"][r] for r in rows],
    )  # fmt: skip


def failed_requests(router: Router) -> float:
    return sum(
        s.value for s in router.metrics.samples()
        if s.name == "tiny_dancer_routing_requests_total" and s.labels.get("status") == "failure"
    )  # fmt: skip


def assert_same_response(a: RoutingResponse, b: RoutingResponse) -> None:
    # Normalised embeddings change the cosine by float32 rounding only; the order follows the confidences.
    assert a.candidates_processed == b.candidates_processed
    assert sorted(a.candidate_ids) == sorted(b.candidate_ids)
    by_id = dict(zip(b.candidate_ids, range(len(b.candidate_ids)), strict=True))
    order = [by_id[c] for c in a.candidate_ids]
    np.testing.assert_allclose(a.confidence, b.confidence[order], atol=2e-6)
    np.testing.assert_allclose(a.uncertainty, b.uncertainty[order], atol=4e-6)
    np.testing.assert_array_equal(np.diff(a.confidence) <= 0, True)


@pytest.mark.parametrize("n", [1, 7, 40])
@pytest.mark.parametrize("query_meta", [None, {"lang": "en", "tier": 1}])
def test_route_from_store_matches_from_arrays(router: Router, n: int, query_meta: Any) -> None:
    data = candidates(60)
    store = filled(data)
    query = np.random.default_rng(n).normal(size=D)
    ids = [f"c{i}" for i in np.random.default_rng(n).permutation(60)[:n]]
    stored = router.route(RoutingRequest.from_store(store, query, ids, metadata=query_meta), now=NOW)
    arrays = router.route(from_arrays(query, data, ids, query_meta), now=NOW)
    assert_same_response(stored, arrays)
    lights = (stored.lightweight_routes, arrays.lightweight_routes)
    assert lights[0] == lights[1]


def test_route_every_stored_candidate(router: Router) -> None:
    data = candidates(30)
    store = filled(data)
    query = np.ones(D)
    response = router.route(RoutingRequest.from_store(store, query), now=NOW)
    assert_same_response(response, router.route(from_arrays(query, data, data["ids"]), now=NOW))


def test_packed_columns_equal_from_arrays() -> None:
    from tinydancer.routing.packing import pack_request

    data = candidates(25)
    store = filled(data)
    ids = data["ids"][::-1]
    meta = {"lang": "de", "tier": 0}
    stored = pack_request(RoutingRequest.from_store(store, np.ones(D), ids, metadata=meta), NOW)
    arrays = pack_request(from_arrays(np.ones(D), data, ids, meta), NOW)
    assert stored.ids == arrays.ids
    np.testing.assert_array_equal(stored.columns, arrays.columns)  # ages, counts, rates, metadata: exact
    norms = np.linalg.norm(arrays.embeddings, axis=1, keepdims=True)
    np.testing.assert_allclose(stored.embeddings, arrays.embeddings / norms, rtol=1e-6, atol=1e-7)


def test_embeddings_are_normalised_once_aligned_and_contiguous() -> None:
    store = CandidateStore(3, capacity=2)
    store.upsert_many(["a", "b", "z"], [[3, 4, 0], [0, 0, 2.5], [0, 0, 0]])
    assert store.get("a").embedding.tolist() == pytest.approx([0.6, 0.8, 0.0])
    assert store.get("b").embedding.tolist() == [0.0, 0.0, 1.0]
    assert store.get("z").embedding.tolist() == [0.0, 0.0, 0.0]  # zero stays zero
    matrix = store._embeddings
    assert matrix.dtype == np.float32 and matrix.flags.c_contiguous
    assert matrix.ctypes.data % ALIGNMENT_BYTES == 0


def test_similarity_equals_the_kernels_cosine() -> None:
    data = candidates(300)
    store = filled(data)
    data["embeddings"][7] = 0.0
    store.update("c7", embedding=np.zeros(D))
    query = np.random.default_rng(5).normal(size=D).astype(np.float32)
    expected = np.asarray(cosine_similarity(query, data["embeddings"]))
    np.testing.assert_allclose(store.similarity(query), expected, atol=1e-6)
    picked = ["c9", "c7", "c0"]
    np.testing.assert_allclose(store.similarity(query, picked), expected[[9, 7, 0]], atol=1e-6)
    zero_query = store.similarity(np.zeros(D))  # zero vs zero 1.0, zero vs other 0.0, as the kernel
    assert zero_query[7] == 1.0 and np.count_nonzero(zero_query) == 1


def test_growth_by_doubling_keeps_every_row() -> None:
    data = candidates(100, metadata=False)
    store = CandidateStore(D, capacity=3)
    for i in range(0, 100, 9):
        store.upsert_many(data["ids"][i : i + 9], data["embeddings"][i : i + 9])
    assert len(store) == 100 and store.capacity == 192  # 3 -> 6 -> ... -> 192
    rows = store.snapshot(data["ids"])
    norms = np.linalg.norm(data["embeddings"], axis=1, keepdims=True)
    np.testing.assert_allclose(rows.embeddings, data["embeddings"] / norms, rtol=1e-6)


def test_update_changes_only_the_given_fields() -> None:
    store = filled(candidates(5))
    before = store.get("c1")
    version = store.version
    store.update("c1", access_count=11, metadata={"lang": "it"})
    after = store.get("c1")
    assert (after.access_count, after.metadata) == (11, {"lang": "it"})
    assert after.created_at == before.created_at and after.success_rate == before.success_rate
    np.testing.assert_array_equal(after.embedding, before.embedding)  # bit for bit
    assert store.version > version
    store.update("c1", embedding=np.full(D, 2.0), created_at=None)
    assert store.get("c1").embedding.tolist() == pytest.approx([0.25] * D)
    assert store.get("c1").created_at is None


def test_upsert_replaces_and_insert_refuses_an_existing_id() -> None:
    store = CandidateStore(2)
    store.insert("a", [1.0, 0.0], success_rate=0.5)
    store.upsert("a", [0.0, 1.0])
    assert len(store) == 1 and store.get("a").success_rate == 0.0
    with pytest.raises(InvalidInputError, match="'a' is stored already"):
        store.insert("a", [1.0, 1.0])


def test_delete_swaps_the_last_row_in() -> None:
    data = candidates(6)
    store = filled(data)
    store.delete("c1")
    assert store.ids == ("c0", "c5", "c2", "c3", "c4") and "c1" not in store
    store.delete_many(["c0", "c4"])
    assert sorted(store.ids) == ["c2", "c3", "c5"]
    for cid in store.ids:  # every id still finds its own row
        i = int(cid[1:])
        expected = data["embeddings"][i] / np.linalg.norm(data["embeddings"][i])
        np.testing.assert_allclose(store.get(cid).embedding, expected, rtol=1e-6)
        assert store.get(cid).access_count == data["access_count"][i]
    assert store._with_metadata == sum(data["metadata"][int(c[1:])] is not None for c in store.ids)
    store.clear()
    assert len(store) == 0 and store.similarity(np.ones(D)).shape == (0,)


def test_in_place_pack_reads_the_stores_own_rows_and_routes_alike(router: Router) -> None:
    from tinydancer.routing import DeviceModel, default_inference, pack_request, request_features
    from tinydancer.routing.kernel import run_route

    data = candidates(50)
    store = filled(data)
    ids = data["ids"][7:40:3][::-1]
    request = RoutingRequest.from_store(store, np.linspace(-1, 1, D), ids, metadata={"lang": "fr"})
    with store.lock:
        in_place = pack_request(request, NOW, in_place=True)
        assert np.shares_memory(in_place.embeddings, store._embeddings) and len(in_place.rows) == len(ids)
        copied = pack_request(request, NOW)
        assert copied.rows.size == 0 and not np.shares_memory(copied.embeddings, store._embeddings)
        np.testing.assert_array_equal(in_place.embeddings[in_place.rows], copied.embeddings)
        np.testing.assert_array_equal(in_place.columns, copied.columns)
        np.testing.assert_array_equal(request_features(in_place), request_features(copied))
        model = router.model
        assert isinstance(model, DeviceModel) and model.host is not None
        outputs = (default_inference(model, packed, 0.6, 0.9) for packed in (in_place, copied))
        for a, b in zip(*outputs, strict=True):
            np.testing.assert_array_equal(a, b)  # the same rows, the same compiled arithmetic: bit for bit
        kernel_only = model._replace(host=None)  # the jitted kernel gathers the rows it is given by index
        for a, b in zip(
            run_route(kernel_only, in_place.query, in_place.embeddings, in_place.columns, 0.6, 0.9, in_place.rows),
            run_route(kernel_only, copied.query, copied.embeddings, copied.columns, 0.6, 0.9),
            strict=True,
        ):
            np.testing.assert_array_equal(a, b)


def test_router_holds_the_store_lock_while_it_reads_rows_in_place(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tinydancer.routing.router as router_module

    store = filled(candidates(20))
    seen: list[tuple[bool, int]] = []
    real = router_module.run_route

    def spy(*args: Any) -> Any:
        seen.append((store.lock._is_owned(), len(args[-1])))  # type: ignore[attr-defined]
        return real(*args)

    monkeypatch.setattr(router_module, "run_route", spy)
    router.route(RoutingRequest.from_store(store, np.ones(D), ["c3", "c1"]), now=NOW)
    router.route(RoutingRequest.from_store(store, np.ones(D)), now=NOW)  # every row: [0, N) of the matrix
    router.route(from_arrays(np.ones(D), candidates(20), ["c3", "c1"]), now=NOW)
    assert router.route(RoutingRequest.from_store(store, np.ones(D), []), now=NOW).candidates_processed == 0
    assert seen == [(True, 2), (True, 0), (False, 0), (True, 0)]
    assert not store.lock._is_owned()  # type: ignore[attr-defined]
    with pytest.raises(InvalidInputError, match="unknown candidate id"):
        router.route(RoutingRequest.from_store(store, np.ones(D), ["c3", "nope"]), now=NOW)
    assert not store.lock._is_owned()  # type: ignore[attr-defined]  # released on a bad request too
    store.upsert("new", np.ones(D))  # and other threads can write again
    done = threading.Thread(target=store.upsert, args=("other", np.ones(D)))
    done.start()
    done.join(timeout=10)
    assert not done.is_alive() and "other" in store


@pytest.mark.parametrize("stored", [3, 500])  # the bitmap of rows, and (a store 32x larger than the ids) a set
def test_a_repeated_id_is_named_for_small_and_large_stores(stored: int) -> None:
    store = filled(candidates(stored))
    with pytest.raises(InvalidInputError, match="duplicate candidate id 'c1'"):
        store.snapshot(["c2", "c1", "c0", "c1"])
    assert store.snapshot(["c2", "c1", "c0"]).ids == ("c2", "c1", "c0")


def test_errors_are_typed_and_name_the_offender(router: Router) -> None:
    store = filled(candidates(4))
    with pytest.raises(InvalidInputError, match=r"unknown candidate id 'nope' \(index 1\)"):
        store.snapshot(["c0", "nope"])
    with pytest.raises(InvalidInputError, match="unknown candidate id 'x'"):
        store.delete("x")
    with pytest.raises(InvalidInputError, match="unknown candidate id 'x'"):
        store.update("x", access_count=1)
    with pytest.raises(InvalidInputError, match="duplicate candidate id 'c0'"):
        store.snapshot(["c0", "c0"])
    with pytest.raises(InvalidInputError, match="candidate id at index 0: expected str, got int"):
        store.snapshot([3])  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match="Vector dimension mismatch: the store has 16, candidate 'y' has 3"):
        store.upsert_many(["y"], np.ones((1, 3)))
    with pytest.raises(InvalidInputError, match="Vector dimension mismatch: query has 3, candidates have 16"):
        store.similarity(np.ones(3))
    with pytest.raises(InvalidInputError, match=r"'y'.*NaN"):
        store.upsert("y", np.full(D, np.nan))
    with pytest.raises(InvalidInputError, match="success_rate must be in"):
        store.upsert("y", np.ones(D), success_rate=2.0)
    with pytest.raises(InvalidInputError, match="access_count must be a non-negative integer"):
        store.update("c0", access_count=-1)
    with pytest.raises(InvalidInputError, match="candidate 'y' metadata"):
        store.upsert("y", np.ones(D), metadata={"x": float("nan")})
    with pytest.raises(InvalidInputError, match="dim: expected a positive integer"):
        CandidateStore(0)
    with pytest.raises(InvalidInputError, match="got one str"):
        store.upsert_many("c0", np.ones((1, D)))
    with pytest.raises(InvalidInputError, match="got one str"):
        RoutingRequest.from_store(store, np.ones(D), "c0")
    assert len(store) == 4 and store.get("c0").access_count >= 0  # nothing changed by a failed write
    failed_before = failed_requests(router)
    for bad in (["c0", "gone"], ["c1", "c1"]):
        with pytest.raises(InvalidInputError):
            router.route(RoutingRequest.from_store(store, np.ones(D), bad), now=NOW)
    with pytest.raises(InvalidInputError, match="Vector dimension mismatch: query has 3, candidates have 16"):
        router.route(RoutingRequest.from_store(store, np.ones(3), ["c0"]), now=NOW)
    assert failed_requests(router) == failed_before + 3  # counted like any bad request


def test_request_from_store_reads_the_store_when_routed(router: Router) -> None:
    store = filled(candidates(3))
    request = RoutingRequest.from_store(store, np.ones(D))
    store.upsert("late", np.ones(D))
    assert len(request) == 4 and request.candidates[-1].id == "late"
    assert router.route(request, now=NOW).candidates_processed == 4


def test_writers_and_readers_concurrently(router: Router) -> None:
    """Writers insert, update and delete while readers route and score: no error, consistent snapshots."""
    base = candidates(40)
    store = filled(base)
    stable = base["ids"][:10]  # never touched by the writers
    query = np.random.default_rng(1).normal(size=D)
    expected = router.route(RoutingRequest.from_store(store, query, stable), now=NOW)
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for i in range(150):
                cid = f"w{seed}-{i}"
                store.insert(cid, rng.normal(size=D), access_count=i, success_rate=0.5)
                if i % 3 == 0:
                    store.update(cid, embedding=rng.normal(size=D))
                if i % 2 == 0:
                    store.delete(cid)
                if i % 10 == 0:
                    store.upsert_many([f"w{seed}-bulk-{j}" for j in range(20)], rng.normal(size=(20, D)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            while not stop.is_set():
                response = router.route(RoutingRequest.from_store(store, query, stable), now=NOW)
                np.testing.assert_array_equal(response.confidence, expected.confidence)
                assert response.candidate_ids == expected.candidate_ids
                whole = router.route(RoutingRequest.from_store(store, query), now=NOW)
                assert len(set(whole.candidate_ids)) == whole.candidates_processed  # one state, no torn rows
                sims = store.similarity(query)
                assert np.all(np.abs(sims) <= 1.0 + 1e-6)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(s,)) for s in (1, 2, 3)]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()
    assert errors == []
    kept = {f"w{s}-{i}" for s in (1, 2, 3) for i in range(150) if i % 2} | {
        f"w{s}-bulk-{j}" for s in (1, 2, 3) for j in range(20)
    }
    assert set(store.ids) == set(base["ids"]) | kept and len(store) == 40 + len(kept)
    rows = store.snapshot()
    assert rows.ids == store.ids
    for cid in ("w1-1", "w2-149", "w3-7"):
        assert store.get(cid).access_count == int(cid.split("-")[1])
    np.testing.assert_allclose(np.linalg.norm(rows.embeddings, axis=1), 1.0, rtol=1e-5)
    assert {store._rows[c] for c in store.ids} == set(range(len(store)))
