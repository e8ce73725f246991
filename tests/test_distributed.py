"""Per-gene fits and CNN features on a dask.distributed cluster of worker processes give the
local results exactly (issue: runs that scale past one machine)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from stlib import im
from stlib.models import glm

sys.path.insert(0, str(Path(__file__).parent))
from test_im import make_adata  # noqa: E402

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, one thread each: a cluster as a user would start one."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


def _counts(seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    X = {s: rng.normal(size=(n, 4)) for s, n in (("train", 150), ("valid", 40), ("test", 40))}
    beta = rng.normal(scale=0.3, size=(4, 12))
    y = rng.poisson(np.exp(1.0 + X["train"] @ beta))
    return X, y


@pytest.mark.parametrize("family", ["poisson", "nb_apriori"])
def test_glms_on_a_cluster_equal_local(cluster, family: str) -> None:
    X, y = _counts()
    local = glm.fit_glm(X, y, family=family, n_jobs=1)
    by_address = glm.fit_glm(X, y, family=family, scheduler=cluster.scheduler_address)
    with distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as stream:
            by_client = glm.fit_glm(X, y, family=family, scheduler=client)
        workers = {t["worker"] for t in stream.data}
        assert len(stream.data) > 0 and workers <= set(cluster.scheduler_info["workers"])  # it ran there
    for other in (by_address, by_client):
        for s in X:
            np.testing.assert_array_equal(other.predictions[s], local.predictions[s])
        assert list(other.per_gene["status"]) == list(local.per_gene["status"])


def test_cnn_features_on_worker_processes_equal_local(cluster, tmp_path: Path) -> None:
    """Each worker process builds the (seeded, random-weight) MobileNetV2 itself. Equal up to float
    rounding (~1e-10): a one-thread worker sums TensorFlow's reductions in another order."""
    adata = make_adata(tmp_path)
    local = im.cnn_features(adata, backbone="mobilenet_v2", weights=None, size=224, progress=False, copy=True)
    remote = im.cnn_features(adata, backbone="mobilenet_v2", weights=None, size=224, progress=False, copy=True,
                             scheduler=cluster.scheduler_address)
    np.testing.assert_allclose(remote.obsm["X_cnn"], local.obsm["X_cnn"], rtol=0, atol=1e-7)
