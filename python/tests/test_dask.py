"""bgad.dask on a LocalCluster of 2 worker processes: scores equal to the local predict, error
rows, a worker killed mid-job, the resumable CLI run, fit_many against fitting one by one."""

import hashlib
import json
import os
import pickle
import signal

import numpy as np
import pytest

pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import bgad  # noqa: E402
import bgad.dask as bdask  # noqa: E402
from bgad import BGADError  # noqa: E402
from bgad.cli import main as cli_main  # noqa: E402
from bgad.datasets import MVTecFolder  # noqa: E402
from bgad.detector import Detector  # noqa: E402

from test_datasets import make_mvtec  # noqa: E402

FAST = dict(image_size=64, steps=20, rpag_per_anomaly=1, progress=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A tiny MVTec folder and 30 images to score: gray and RGB, three sizes."""
    root = tmp_path_factory.mktemp("dask")
    folder = make_mvtec(root / "widget", np.random.default_rng(1), good=12, per_type=4)
    rng = np.random.default_rng(2)
    images = root / "images"
    images.mkdir()
    for i in range(30):
        shape = [(32, 32), (40, 28), (24, 36, 3)][i % 3]
        img = rng.integers(0, 90, shape, dtype=np.uint8)
        if i % 4 == 0:
            img[5:12, 6:15] = 250
        bgad.io.write_png(str(images / f"{i:03d}.png"), img)
    return folder, images


@pytest.fixture(scope="module")
def detector(data):
    folder, _ = data
    split = MVTecFolder(folder).split("multi", n_known=2, seed=0)
    return Detector(seed=0, **FAST).fit(split.train_normal, split.known_anomalies, split.known_masks)


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 worker processes. Its nannies write OPENBLAS_NUM_THREADS=1 (and
    OMP_, MKL_...) into this process's environment for the workers, each time they start
    one: the environment is restored afterwards, or the processes later tests spawn would
    run the engine on one thread."""
    environ = dict(os.environ)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0")
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()
    os.environ.clear()
    os.environ.update(environ)


@pytest.fixture()
def one_thread():
    """The workers run the engine on one thread each (2 workers, 2 cores); the reference runs
    the same way."""
    before = bgad.get_num_threads()
    bgad.set_num_threads(1)
    yield
    bgad.set_num_threads(before)


def _paths(images):
    return sorted(str(p) for p in images.glob("*.png"))


def _reference(det, paths):
    """The local predict of the detector as a worker holds it: loaded from its bytes and
    first used with the engine on one thread. (The engine fixes a detector's work split at
    its first predict from the thread count then: another count gives scores ~1e-6 apart.)"""
    return Detector.from_bytes(det.to_bytes(), progress=False).predict(paths)


def test_score_equals_local_predict_and_maps_are_written(client, detector, data, tmp_path, one_thread):
    paths = _paths(data[1])
    ref = _reference(detector, paths)
    df = bdask.score(detector, paths, client=client, predict_batch=4, partition_size=7, maps_dir=tmp_path / "maps")
    assert df.npartitions == 5
    out = df.compute()
    assert list(out.columns) == list(bdask.COLUMNS) + ["map_path"]
    assert out.path.tolist() == paths  # order kept, every path once
    np.testing.assert_array_equal(out.score.to_numpy(), [p.score for p in ref])
    assert out.is_anomalous.tolist() == [p.is_anomalous for p in ref]
    assert (out.threshold == detector.image_threshold_).all()
    assert (out.model_id == hashlib.sha256(detector.to_bytes()).hexdigest()[:16]).all()
    assert out.error.isna().all()
    assert 0 < sum(p.is_anomalous for p in ref) < len(ref)  # both decisions occur
    for (_, row), p in zip(out.iterrows(), ref):
        m = np.load(row.map_path)
        assert m.dtype == np.float32 and m.shape == p.anomaly_map.shape
        np.testing.assert_array_equal(m, p.anomaly_map)
    assert len(set(out.map_path)) == len(paths)


def test_each_worker_loads_the_detector_once_with_threads_set(client, detector, data):
    paths = _paths(data[1])
    mid = bdask.model_id_of(detector.to_bytes())
    for _ in range(2):  # two computations, 15 tasks each
        df = bdask.score(detector, paths, client=client, predict_batch=2, partition_size=2)
        assert len(pickle.dumps(dict(df.__dask_graph__()))) < 200_000  # the bytes are not in the graph
        df.compute()
    states = client.run(bdask.worker_state)
    cores = len(os.sched_getaffinity(0))
    assert len(states) == 2
    for st in states.values():
        assert st["loads"].get(mid, 0) <= 1  # at most once per worker process
        assert st["threads"] == max(1, cores // 2)  # 2 worker processes on this host
    assert sum(st["loads"].get(mid, 0) for st in states.values()) >= 1
    assert bdask.threads_plan(client)["127.0.0.1"] == max(1, cores // 2)
    assert bdask.threads_plan(client, threads_per_worker=3) == {"*": 3}


def test_the_detector_bytes_are_in_the_graph_once(detector, data):
    """Without a distributed client the bytes are one key of the graph, not one copy per task."""
    paths = _paths(data[1])
    size = len(detector.to_bytes())
    df = bdask.score(detector, paths, client=False, partition_size=2)
    graph = dict(df.__dask_graph__())
    assert df.npartitions == 15 and len(pickle.dumps(graph)) < 1.2 * size
    out = df.compute(scheduler="sync")
    assert out.path.tolist() == paths and out.error.isna().all()


def test_unreadable_paths_become_error_rows(client, detector, data, tmp_path, one_thread):
    paths = _paths(data[1])[:5]
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    missing = str(tmp_path / "missing.png")
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    all_paths = [paths[0], missing, paths[1], str(corrupt), str(tmp_path), str(text)] + paths[2:]
    out = bdask.score(detector, all_paths, client=client, predict_batch=3, partition_size=4).compute()
    assert out.path.tolist() == all_paths
    bad = out[out.error.notna()]
    assert bad.path.tolist() == [missing, str(corrupt), str(tmp_path), str(text)]
    assert "missing.png" in bad.error.iloc[0] and "corrupt.png" in bad.error.iloc[1]
    assert bad.score.isna().all() and bad.is_anomalous.isna().all()
    good = out[out.error.isna()]
    np.testing.assert_array_equal(good.score.to_numpy(), [p.score for p in _reference(detector, paths)])


def test_bad_arguments_are_refused_clearly(detector, data, tmp_path):
    with pytest.raises(BGADError, match="no image paths"):
        bdask.score(detector, [])
    with pytest.raises(BGADError, match="not found"):
        bdask.score(tmp_path / "nope.bgad", _paths(data[1]))
    with pytest.raises(BGADError, match="not fitted"):
        bdask.score(Detector(progress=False), _paths(data[1]))
    with pytest.raises(BGADError, match="partition size"):
        bdask.score(detector, _paths(data[1]), partition_size=0)
    with pytest.raises(BGADError, match="threads_per_worker"):
        bdask.threads_plan(None, threads_per_worker=0)
    with pytest.raises(BGADError, match="local:N"):
        bdask.connect("local:two")


class KillOnce(distributed.WorkerPlugin):
    """Kills (SIGKILL) the worker process at ``address`` when its ``after``-th scoring task
    starts; the nanny starts a new worker (another address), which the plugin leaves alone."""

    name = "bgad-test-kill-once"

    def __init__(self, address, after):
        self.address, self.after, self.seen = address, after, 0

    def setup(self, worker):
        self.worker = worker

    def transition(self, key, start, finish, **kwargs):
        if finish == "executing" and self.worker.address == self.address and "score_partition" in str(key):
            self.seen += 1
            if self.seen >= self.after:
                os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_killed_mid_job_leaves_every_path_exactly_once(client, detector, data, one_thread):
    paths = _paths(data[1])
    ref = _reference(detector, paths)
    victim = sorted(client.scheduler_info(n_workers=-1)["workers"])[0]
    pids_before = client.run(os.getpid)
    client.register_plugin(KillOnce(victim, after=2))
    try:
        out = bdask.score(detector, paths, client=client, predict_batch=1, partition_size=1).compute()
    finally:
        client.unregister_worker_plugin(KillOnce.name)
        client.wait_for_workers(2, timeout=60)
    pids_after = client.run(os.getpid)
    assert victim not in pids_after and pids_before[victim] not in pids_after.values()  # it did die
    assert out.path.tolist() == paths and out.path.is_unique
    assert out.error.isna().all()
    np.testing.assert_array_equal(out.score.to_numpy(), [p.score for p in ref])


def test_cli_predict_on_the_cluster_resumes_without_duplicates(client, detector, data, tmp_path, one_thread):
    from bgad.cli import build_parser
    from bgad.cli.predict import run_distributed

    model = tmp_path / "m.bgad"
    detector.save(model)
    paths = _paths(data[1])
    out = tmp_path / "run"
    argv = ["predict", str(model), str(data[1]), "--out", str(out), "--scheduler", client.scheduler.address,
            "--partition-size", "4", "--predict-batch", "2", "--quiet"]
    args = build_parser().parse_args(argv)

    class Interrupt(Exception):
        pass

    def stop_after_three(index, done):
        if done == 3:
            raise Interrupt

    with pytest.raises(Interrupt):  # the client stops after 3 of 8 partitions, other tasks in flight
        run_distributed(args, on_partition=stop_after_three)
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert len(first) == 3
    (out / "part-00007.parquet.x1y2.tmp").write_bytes(b"half a file of a killed run")
    assert cli_main(argv) == 0  # resume
    files = sorted(out.glob("part-*.parquet"))
    assert [f.name for f in files] == [f"part-{i:05d}.parquet" for i in range(8)]
    assert {n: (out / n).stat().st_mtime_ns for n in first} == first  # finished partitions not rewritten
    assert not list(out.glob("*.tmp"))
    table = bdask.read_dir(out)
    assert table.path.tolist() == paths and table.path.is_unique
    np.testing.assert_array_equal(table.score.to_numpy(), [p.score for p in _reference(detector, paths)])
    manifest = json.loads((out / bdask.MANIFEST).read_text())
    assert manifest["paths"] == 30 and manifest["partition_size"] == 4
    assert cli_main(argv) == 0  # a finished run: nothing to do, nothing rewritten
    assert [f.stat().st_mtime_ns for f in sorted(out.glob("part-*.parquet"))] == [f.stat().st_mtime_ns for f in files]
    # the same folder with other inputs is refused
    other = ["predict", str(model), paths[0], "--out", str(out), "--scheduler", client.scheduler.address]
    assert cli_main(other) == 2


def test_cli_predict_csv_partitions_and_maps(client, detector, data, tmp_path, one_thread):
    model = tmp_path / "m.bgad"
    detector.save(model)
    paths = _paths(data[1])[:9]
    out = tmp_path / "csv"
    argv = ["predict", str(model), *paths, "--out", str(out), "--scheduler", client.scheduler.address,
            "--partition-size", "5", "--format", "csv", "--maps"]
    assert cli_main(argv) == 0
    table = bdask.read_dir(out)
    assert sorted(p.name for p in out.glob("part-*.csv")) == ["part-00000.csv", "part-00001.csv"]
    ref = _reference(detector, paths)
    assert table.path.tolist() == paths
    np.testing.assert_allclose(table.score.to_numpy(), [p.score for p in ref], rtol=1e-15)  # CSV: 17 digits
    for path, p in zip(paths, ref):
        np.testing.assert_array_equal(np.load(out / "maps" / bdask.map_file_name(path)), p.anomaly_map)


# ---------------------------------------------------------------------- fit_many


@pytest.fixture(scope="module")
def products(tmp_path_factory):
    """Two product folders in the MVTec layout (different images)."""
    root = tmp_path_factory.mktemp("products")
    return {name: make_mvtec(root / name, np.random.default_rng(seed), good=8, per_type=2)
            for name, seed in (("bolt", 11), ("nut", 12))}


def _specs(products, out):
    bolt, nut = products["bolt"], products["nut"]
    return [
        {"name": "bolt", "normal": str(bolt / "train" / "good"), "anomalous": str(bolt / "test" / "crack"),
         "masks": str(bolt / "ground_truth" / "crack"), "params": dict(FAST, seed=1), "out": str(out / "bolt.bgad")},
        {"name": "nut", "normal": str(nut / "train" / "good" / "*.png"), "params": dict(FAST, variant="nfad", seed=2),
         "out": str(out / "nut.bgad")},
        {"name": "missing", "normal": str(out / "no-such-folder"), "out": str(out / "missing.bgad")},
        {"name": "bad-param", "normal": str(nut / "train" / "good"), "params": {"steps": -3},
         "out": str(out / "bad.bgad")},
    ]


def test_fit_many_writes_the_files_fitting_one_by_one_writes(client, products, tmp_path, one_thread):
    """Same bytes: a fit is deterministic for a seed and a thread count, and the workers fit
    with one engine thread each, as the reference does here."""
    specs = _specs(products, tmp_path / "models")
    table = bdask.fit_many(specs, client=client)
    assert table.name.tolist() == ["bolt", "nut", "missing", "bad-param"]
    assert table.error.iloc[:2].isna().all()
    assert "no-such-folder" in table.error.iloc[2] and "steps" in table.error.iloc[3]
    assert not (tmp_path / "models" / "missing.bgad").exists() and not (tmp_path / "models" / "bad.bgad").exists()
    for spec, row in zip(specs[:2], table.itertuples()):
        det = Detector(**spec["params"]).fit_folders(spec["normal"], spec.get("anomalous"),
                                                                     spec.get("masks"))
        data = (tmp_path / "models" / f"{spec['name']}.bgad").read_bytes()
        assert data == det.to_bytes()
        assert row.model_id == bdask.model_id_of(data)
    assert not list((tmp_path / "models").glob("*.tmp*"))


def test_fit_many_refuses_malformed_specs(tmp_path):
    with pytest.raises(BGADError, match="non-empty list"):
        bdask.fit_many([])
    with pytest.raises(BGADError, match="missing 'normal'"):
        bdask.fit_many([{"name": "a", "out": "a.bgad"}])
    with pytest.raises(BGADError, match="unknown key"):
        bdask.fit_many([{"name": "a", "normal": "x", "out": "a.bgad", "anomalies": "y"}])
    with pytest.raises(BGADError, match="twice"):
        bdask.fit_many([{"name": "a", "normal": "x", "out": "a.bgad"}, {"name": "a", "normal": "x", "out": "b.bgad"}])
    with pytest.raises(BGADError, match="another spec"):
        bdask.fit_many([{"name": "a", "normal": "x", "out": "a.bgad"}, {"name": "b", "normal": "x", "out": "a.bgad"}])


def test_cli_fit_many_with_relative_paths(client, products, tmp_path, capsys):
    spec_dir = products["bolt"].parent
    specs = [{"name": "bolt", "normal": "bolt/train/good", "params": FAST, "out": str(tmp_path / "bolt.bgad")},
             {"name": "nut", "normal": "nut/train/good", "anomalous": "nut/test/scratch", "params": FAST,
              "out": str(tmp_path / "nut.bgad")}]
    spec_file = spec_dir / "spec.json"
    spec_file.write_text(json.dumps({"specs": specs}))
    assert cli_main(["fit-many", str(spec_file), "--scheduler", client.scheduler.address]) == 0
    assert "2 of 2 detectors written" in capsys.readouterr().out
    assert Detector.load(tmp_path / "bolt.bgad").is_fitted and Detector.load(tmp_path / "nut.bgad").is_fitted
    spec_file.write_text(json.dumps(specs + [{"name": "x", "normal": "nowhere", "out": str(tmp_path / "x.bgad")}]))
    assert cli_main(["fit-many", str(spec_file), "--scheduler", client.scheduler.address]) == 1
    out = capsys.readouterr().out
    assert "x: FAILED" in out and "nowhere" in out and "2 of 3 detectors written" in out
    spec_file.write_text("{not json")
    assert cli_main(["fit-many", str(spec_file)]) == 2


def test_fsspec_urls_are_read_like_paths(detector, data, tmp_path):
    pytest.importorskip("fsspec")
    paths = _paths(data[1])[:4]
    urls = ["file://" + p for p in paths] + ["file://" + str(tmp_path / "gone.png")]
    out = bdask.score(detector, urls, client=False, predict_batch=2).compute(scheduler="sync")
    assert out.path.tolist() == urls
    local = bdask.score(detector, paths, client=False, predict_batch=2).compute(scheduler="sync")
    np.testing.assert_array_equal(out.score.to_numpy()[:4], local.score.to_numpy())  # same detector object
    np.testing.assert_allclose(out.score.to_numpy()[:4], [p.score for p in _reference(detector, paths)], rtol=1e-5)
    assert out.error.iloc[:4].isna().all() and "gone.png" in out.error.iloc[4]


def test_cli_predict_on_a_local_cluster_it_starts(detector, data, tmp_path, capsys):
    model = tmp_path / "m.bgad"
    detector.save(model)
    listing = tmp_path / "list.txt"
    paths = _paths(data[1])[:3]
    listing.write_text("\n".join(paths) + "\n")
    assert cli_main(["predict", str(model), str(listing), "--out", str(tmp_path / "run"), "--scheduler", "local:1"]) == 0
    assert "3 images in 1 partitions" in capsys.readouterr().out
    assert bdask.read_dir(tmp_path / "run").path.tolist() == paths


def test_score_to_dir_resumes_on_the_same_client(client, detector, data, tmp_path):
    paths = _paths(data[1])
    out = tmp_path / "run"

    def stop(index, done):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bdask.score_to_dir(detector, paths[::-1], out, client=client, partition_size=2, on_partition=stop)
    assert len(list(out.glob("part-*"))) == 2
    done = bdask.score_to_dir(detector, paths, out, client=client, partition_size=2)
    assert (done["partitions"], done["skipped"], done["written"], done["rows"]) == (15, 2, 13, 26)
    table = bdask.read_dir(out)
    assert table.path.tolist() == paths and table.path.is_unique and table.error.isna().all()


def test_without_dask_the_error_names_the_extra(monkeypatch, detector, data):
    import sys

    monkeypatch.setitem(sys.modules, "dask.dataframe", None)  # import dask.dataframe fails
    with pytest.raises(BGADError, match=r"bgad\[dask\]"):
        bdask.score(detector, _paths(data[1]))
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(BGADError, match=r"bgad\[dask\]"):
        bdask.connect("local:1")


class SlowStart(distributed.WorkerPlugin):
    """Holds each scoring task 0.2 s before it starts, so that a run lasts long enough to be
    killed in the middle."""

    name = "bgad-test-slow-start"

    def transition(self, key, start, finish, **kwargs):
        if finish == "executing" and "bgad-score" in str(key):
            import time

            time.sleep(0.2)


def test_cli_predict_killed_with_sigkill_resumes(client, detector, data, tmp_path):
    import subprocess
    import sys
    import time

    model = tmp_path / "m.bgad"
    detector.save(model)
    out = tmp_path / "run"
    argv = ["predict", str(model), str(data[1]), "--out", str(out), "--scheduler", client.scheduler.address,
            "--partition-size", "1"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    client.register_plugin(SlowStart())
    try:
        proc = subprocess.Popen([sys.executable, "-m", "bgad", *argv], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while len(list(out.glob("part-*.parquet"))) < 3 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        client.unregister_worker_plugin(SlowStart.name)
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert proc.returncode == -signal.SIGKILL and 3 <= len(first) < 30  # killed in the middle
    assert cli_main(argv) == 0
    assert {n: (out / n).stat().st_mtime_ns for n in first} == first
    table = bdask.read_dir(out)
    assert table.path.tolist() == _paths(data[1]) and table.path.is_unique and table.error.isna().all()
