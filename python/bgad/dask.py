"""Scale out on Dask: score millions of images and train many detectors on a cluster.

The optional extra ``bgad[dask]`` (``dask[dataframe]``, ``distributed``, ``pyarrow``)
brings the dependencies; the rest of ``bgad`` never imports them.

- :func:`score` turns a list of image paths into a ``dask.dataframe`` of scores. Paths
  travel to the workers, pixels never cross the network: each worker reads its images
  from a file system it shares with the client (or an fsspec URL, see below), scores them
  with the engine and, when ``maps_dir`` is given, writes each anomaly map itself as a
  float32 ``.npy`` file (exact values, at the image's own size).
- :func:`fit_many` trains one detector per product type in parallel and writes each file
  atomically; a failing spec becomes a row with an ``error``, the others finish.
- :func:`score_to_dir` is what ``bgad predict ... --scheduler`` runs: deterministic
  partitions of the sorted path list, one Parquet (or CSV) file per partition written
  atomically as it finishes, and a ``_manifest.json`` that lets an interrupted run resume
  without scoring a finished partition again.

The detector's bytes go to the workers once, not once per task: a worker plugin
(:class:`DetectorPlugin`, registered once per client and detector) carries them to every
worker, including workers that join or restart later; without a distributed client they are
one key of the task graph.
Each worker process keeps the loaded detectors in a small cache keyed by ``model_id`` (the
first 16 hex digits of the sha256 of the detector bytes), so a worker loads a detector
once. The engine's threads per worker process are set so that worker processes × engine
threads on a host do not exceed its cores (the Detector serialises the engine calls of
one process, so Dask threads within a worker do not add engine threads).

Inputs named by a URL (``s3://bucket/a.png``, ``gs://...``, ``file:///...``) are read with
``fsspec`` (installed with dask; the protocol's own package, e.g. ``s3fs``, is needed);
``maps_dir`` and the output folder of :func:`score_to_dir` are local or shared paths.

Example::

    from dask.distributed import Client
    import bgad, bgad.dask
    client = Client("tcp://scheduler:8786")          # or LocalCluster(n_workers=2, threads_per_worker=1)
    det = bgad.Detector.load("widget.bgad")
    df = bgad.dask.score(det, paths, client=client, maps_dir="/shared/maps")
    bad = df[df.is_anomalous.fillna(False)].compute()
"""

from __future__ import annotations

import hashlib
import io as _pyio
import json
import os
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._errors import BGADError, renamed_keywords

#: Columns of a score table, in order (``map_path`` only when maps are written).
COLUMNS = ("path", "score", "is_anomalous", "threshold", "model_id", "error")
#: Columns of the table :func:`fit_many` returns.
FIT_COLUMNS = ("name", "out", "model_id", "seconds", "error")
#: Name of the manifest :func:`score_to_dir` keeps in its output folder.
MANIFEST = "_manifest.json"
#: How many detectors a worker process keeps loaded (least recently used dropped first).
CACHE_SIZE = 4

_INSTALL_HINT = "pip install 'bgad[dask]' (dask[dataframe], distributed, pyarrow)"


def _require_dask():
    """Imports dask, dask.dataframe and pandas, or raises BGADError naming the extra."""
    try:
        import dask  # noqa: F401
        import dask.dataframe  # noqa: F401
        import pandas  # noqa: F401
    except ImportError as exc:
        raise BGADError(f"bgad.dask needs dask with its dataframe part ({exc}): {_INSTALL_HINT}") from None
    return dask


def _require_distributed():
    """Imports dask.distributed, or raises BGADError naming the extra."""
    _require_dask()
    try:
        import distributed
    except ImportError as exc:
        raise BGADError(f"bgad.dask needs dask.distributed for a scheduler ({exc}): {_INSTALL_HINT}") from None
    return distributed


# ---------------------------------------------------------------------- detector bytes and ids


def model_id_of(data: bytes) -> str:
    """The id of a detector: the first 16 hex digits of the sha256 of its bytes (its file)."""
    return hashlib.sha256(data).hexdigest()[:16]


def _detector_bytes(detector: Any) -> bytes:
    """The bytes of a detector given as a fitted :class:`bgad.Detector`, its bytes or its file."""
    from .detector import Detector

    if isinstance(detector, Detector):
        return detector.to_bytes()
    if isinstance(detector, (bytes, bytearray, memoryview)):
        return bytes(detector)
    if isinstance(detector, (str, os.PathLike)):
        path = Path(detector)
        if not path.is_file():
            raise BGADError(f"detector file not found: {path}", 2)
        return path.read_bytes()
    raise BGADError("detector must be a fitted bgad.Detector, its bytes or a detector file, "
                    f"got {type(detector).__name__}")


# ---------------------------------------------------------------------- worker side

_cache: "OrderedDict[str, Any]" = OrderedDict()
_cache_lock = threading.Lock()
_threads_set: Optional[int] = None
_loads: Dict[str, int] = {}


def _worker_detector(model_id: str, data: Optional[bytes], threads: Optional[int]):
    """This process's detector ``model_id`` (loaded the first time from ``data``, or from the
    bytes a :class:`DetectorPlugin` brought to this worker) with the engine set to ``threads``
    threads (None: unchanged)."""
    global _threads_set
    from . import set_num_threads
    from .detector import Detector

    with _cache_lock:
        if threads and threads != _threads_set:
            set_num_threads(threads)
            _threads_set = threads
        det = _cache.get(model_id)
        if det is None:
            det = Detector.from_bytes(_plugin_bytes(model_id) if data is None else data, progress=False)
            _loads[model_id] = _loads.get(model_id, 0) + 1
            _cache[model_id] = det
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
        else:
            _cache.move_to_end(model_id)
        return det


def worker_state() -> Dict[str, Any]:
    """What this process holds: ``cached`` (model ids loaded now), ``loads`` (model id → how
    often it was loaded from bytes) and ``threads`` (the engine's threads). Ask every worker
    with ``client.run(bgad.dask.worker_state)``."""
    from . import get_num_threads

    with _cache_lock:
        return {"cached": list(_cache), "loads": dict(_loads), "threads": get_num_threads()}


try:  # the plugin's base class; without distributed the class is never used
    from distributed import WorkerPlugin as _WorkerPluginBase
except ImportError:  # pragma: no cover - depends on the installation
    _WorkerPluginBase = object


def plugin_name(model_id: str) -> str:
    """The name under which a detector's :class:`DetectorPlugin` is registered."""
    return f"bgad-detector-{model_id}"


class DetectorPlugin(_WorkerPluginBase):
    """Carries a detector's bytes to every worker of a cluster, those that join later
    included (the scheduler keeps registered plugins and hands them to new or restarted
    workers). The tasks then travel with the model id only; a worker loads the detector
    from these bytes at its first task (:func:`_worker_detector`)."""

    def __init__(self, data: bytes, model_id: str):
        self.data, self.model_id = data, model_id
        self.name = plugin_name(model_id)

    def teardown(self, worker):
        """Unregistered (or the worker closes): drops the loaded detector from the cache."""
        with _cache_lock:
            _cache.pop(self.model_id, None)


def _plugin_bytes(model_id: str) -> bytes:
    """The detector bytes a :class:`DetectorPlugin` brought to this worker process."""
    try:
        from distributed import get_worker

        plugin = get_worker().plugins.get(plugin_name(model_id))
    except (ImportError, ValueError):
        plugin = None
    if plugin is None:
        raise BGADError(f"detector {model_id} was not sent to this process (no {plugin_name(model_id)} plugin)")
    return plugin.data


def _is_url(path: str) -> bool:
    return "://" in path


def _read(path: str) -> np.ndarray:
    """The pixels of one input: a local path through :func:`bgad.detector.read_image`; a URL
    is fetched with fsspec into a temporary file of the same suffix and read the same way."""
    from .io import read_image

    if not _is_url(path):
        return read_image(path)
    try:
        import fsspec
    except ImportError:
        raise BGADError(f"{path}: reading URLs needs fsspec (pip install fsspec)") from None
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bgad-") as tmp:
        local = os.path.join(tmp, "image" + Path(path.split("?", 1)[0]).suffix.lower())
        try:
            with fsspec.open(path, "rb") as src, open(local, "wb") as dst:
                while True:
                    block = src.read(1 << 20)
                    if not block:
                        break
                    dst.write(block)
        except (OSError, ValueError, ImportError) as exc:
            raise BGADError(f"{path}: cannot read ({exc})", 2) from None
        try:
            return read_image(local)
        except BGADError as exc:
            raise BGADError(f"{path}: {str(exc).replace(local, '').lstrip(': ')}", exc.status) from None


def map_file_name(path: str) -> str:
    """The file name of an image's map in ``maps_dir``: its stem, 12 hex digits of the sha1
    of the full path (two folders may hold ``a.png``), ``.npy``."""
    stem = Path(path.rstrip("/")).stem or "image"
    return f"{stem}-{hashlib.sha1(path.encode()).hexdigest()[:12]}.npy"


def _write_map(maps_dir: str, path: str, amap: np.ndarray) -> str:
    from .weights import _write_atomic

    buf = _pyio.BytesIO()
    np.save(buf, np.ascontiguousarray(amap, dtype=np.float32), allow_pickle=False)
    target = Path(maps_dir) / map_file_name(path)
    _write_atomic(target, buf.getvalue())
    return str(target)


def _frame(rows: Dict[str, list], with_maps: bool):
    """The pandas table of a partition with fixed dtypes (the same for every partition)."""
    import pandas as pd

    cols = {
        "path": pd.array(rows["path"], dtype="string"),
        "score": pd.array(rows["score"], dtype="float64"),
        "is_anomalous": pd.array(rows["is_anomalous"], dtype="boolean"),
        "threshold": pd.array(rows["threshold"], dtype="float64"),
        "model_id": pd.array(rows["model_id"], dtype="string"),
        "error": pd.array(rows["error"], dtype="string"),
    }
    if with_maps:
        cols["map_path"] = pd.array(rows["map_path"], dtype="string")
    return pd.DataFrame(cols)


def _empty_rows() -> Dict[str, list]:
    return {c: [] for c in COLUMNS + ("map_path",)}


def _engine_threads_here(plan: Optional[Dict[str, int]]) -> Optional[int]:
    """The engine threads this worker process should use according to ``plan`` (host →
    threads, key ``"*"`` for hosts not in it); None outside a distributed worker."""
    if not plan:
        return None
    try:
        from distributed import get_worker

        host = get_worker().address.rsplit(":", 1)[0].split("://")[-1]
    except (ImportError, ValueError):
        return None
    return plan.get(host, plan.get("*"))


def _predict_batch(predict_batch: int, deprecated: Dict[str, Any], where: str) -> int:
    """``predict_batch``, or the value of its deprecated old keyword ``batch_size`` (with a
    DeprecationWarning); any other keyword is an error, as Python would raise it."""
    unknown = set(deprecated) - {"batch_size"}
    if unknown:
        raise TypeError(f"{where}() got an unexpected keyword argument {sorted(unknown)[0]!r}")
    if "batch_size" in deprecated:
        return renamed_keywords(deprecated, {"batch_size": "predict_batch"}, where, stacklevel=4)["predict_batch"]
    return predict_batch


def score_partition(model_id: str, paths: Sequence[str], predict_batch: int = 32, maps_dir: Optional[str] = None,
                    threads_plan: Optional[Dict[str, int]] = None, data: Optional[bytes] = None, **deprecated: Any):
    """Scores one partition of paths in this process; returns its pandas table.

    This is the task :func:`score` runs on the workers (public so that other schedulers —
    a thread pool, a job array — can call it with ``data``, the detector's bytes; on a Dask
    worker they come from the :class:`DetectorPlugin` when ``data`` is None). A path that
    cannot be read or scored gives a row with ``error`` set (``score`` NaN, ``is_anomalous``
    NA); the others are scored in engine calls of ``predict_batch`` images (``batch_size`` is
    its deprecated old name: the Detector's ``batch_size`` is the training batch).
    """
    predict_batch = _predict_batch(predict_batch, deprecated, "bgad.dask.score_partition")
    det = _worker_detector(model_id, data, _engine_threads_here(threads_plan))
    threshold = det.image_threshold_
    rows = _empty_rows()

    def add(path, score, anomalous, error, map_path):
        rows["path"].append(path)
        rows["score"].append(score)
        rows["is_anomalous"].append(anomalous)
        rows["threshold"].append(threshold)
        rows["model_id"].append(model_id)
        rows["error"].append(error)
        rows["map_path"].append(map_path)

    maps = maps_dir is not None
    for start in range(0, len(paths), max(1, int(predict_batch))):
        batch = [str(p) for p in paths[start:start + max(1, int(predict_batch))]]
        images: List[Optional[np.ndarray]] = []
        errors: List[Optional[str]] = []
        for p in batch:
            try:
                images.append(_read(p))
                errors.append(None)
            except (BGADError, OSError, ValueError) as exc:
                images.append(None)
                errors.append(str(exc))
        good = [i for i, im in enumerate(images) if im is not None]
        preds: Dict[int, Any] = {}
        try:
            for i, pr in zip(good, det.predict([images[i] for i in good], maps=maps)):
                preds[i] = pr
        except BGADError:  # one image the engine refuses: score them one by one to name it
            for i in good:
                try:
                    preds[i] = det.predict([images[i]], maps=maps)[0]
                except BGADError as exc:
                    errors[i] = f"{batch[i]}: {exc}"
        for i, p in enumerate(batch):
            pr = preds.get(i)
            if pr is None:
                add(p, float("nan"), None, errors[i] or f"{p}: not scored", None)
                continue
            map_path = None
            if maps:
                try:
                    map_path = _write_map(maps_dir, p, pr.anomaly_map)
                except (BGADError, OSError) as exc:
                    add(p, pr.score, pr.is_anomalous, f"{p}: map not written ({exc})", None)
                    continue
            add(p, pr.score, pr.is_anomalous, None, map_path)
    return _frame(rows, maps)


# ---------------------------------------------------------------------- client side


def _client_or_none(client):
    """``client``; None → the current distributed client if there is one, else None (dask's
    local scheduler); False → None."""
    if client is False:
        return None
    if client is not None:
        return client
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


def _cores() -> int:
    """Cores this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_plan(client, threads_per_worker: Optional[int] = None) -> Dict[str, int]:
    """Engine threads per worker process for each host of ``client``'s cluster: the host's
    cores divided by its worker processes (at least 1), or ``threads_per_worker`` everywhere.
    Key ``"*"``: the value for a host that joins later (the smallest of the others)."""
    if threads_per_worker is not None:
        n = int(threads_per_worker)
        if not 1 <= n <= 64:
            raise BGADError(f"threads_per_worker must lie in 1...64, got {threads_per_worker!r}")
        return {"*": n}
    workers = client.scheduler_info(n_workers=-1)["workers"]
    if not workers:
        return {"*": 1}
    cores = client.run(_cores)
    hosts: Dict[str, List[str]] = {}
    for addr, w in workers.items():
        hosts.setdefault(w["host"], []).append(addr)
    plan = {host: max(1, min(cores.get(a, 1) for a in addrs) // len(addrs)) for host, addrs in hosts.items()}
    plan["*"] = min(plan.values())
    return plan


def _check_paths(paths: Iterable[Any]) -> List[str]:
    out = [os.fspath(p) for p in paths]
    if not out:
        raise BGADError("no image paths to score")
    return out


def _partitions(paths: Sequence[str], size: int) -> List[List[str]]:
    size = int(size)
    if size < 1:
        raise BGADError(f"partition size must be at least 1, got {size}")
    return [list(paths[i:i + size]) for i in range(0, len(paths), size)]


def _load_checked(data: bytes, model_id: str):
    """Loads the detector on the client (once per ``model_id``, kept in this process's
    cache): a bad or unfitted detector fails here, clearly, before any task runs."""
    det = _worker_detector(model_id, data, None)
    if not det.is_fitted:
        raise BGADError("the detector is not fitted")
    return det


_sent: "OrderedDict[Tuple[int, str], Any]" = OrderedDict()
_sent_lock = threading.Lock()


def send_detector(client, data: bytes, model_id: Optional[str] = None) -> str:
    """Registers the detector's :class:`DetectorPlugin` on ``client``'s cluster once (the
    next calls with the same client and detector send nothing) and returns its model id.
    A worker that dies loses nothing: its replacement gets the plugin from the scheduler.
    The last :data:`CACHE_SIZE` detectors sent from this process stay registered; older
    ones are unregistered (their bytes leave the scheduler and the workers)."""
    import weakref

    mid = model_id or model_id_of(data)
    key = (id(client), mid)
    with _sent_lock:
        ref = _sent.get(key)
        if ref is not None and ref() is client:
            _sent.move_to_end(key)
            return mid
        client.register_plugin(DetectorPlugin(data, mid), name=plugin_name(mid))
        _sent[key] = weakref.ref(client)
        while len(_sent) > CACHE_SIZE:
            (_, old_mid), old_ref = _sent.popitem(last=False)
            old_client = old_ref()
            if old_client is not None and old_client.status == "running":
                try:
                    old_client.unregister_worker_plugin(plugin_name(old_mid))
                except Exception:  # already gone from the cluster: nothing to release
                    pass
    return mid


def score(detector: Any, paths: Sequence[Union[str, os.PathLike]], client=None, predict_batch: int = 32,
          maps_dir: Optional[Union[str, os.PathLike]] = None, partition_size: Optional[int] = None,
          threads_per_worker: Optional[int] = None, **deprecated: Any):
    """Scores images on a Dask cluster; returns a lazy ``dask.dataframe``.

    Args:
        detector: a fitted :class:`bgad.Detector`, its bytes or its file (read here).
        paths: image paths (or fsspec URLs) the workers can read; they keep their order.
        client: a ``distributed.Client``; None → the current client if any, else dask's
            local scheduler in this process; False → dask's local scheduler in any case.
        predict_batch: images per engine call on a worker (``batch_size`` is its deprecated
            old name, kept for one release; the Detector's ``batch_size`` is the training batch).
        maps_dir: a folder the workers can write (a shared file system on a cluster): each
            anomaly map is written there as a float32 ``.npy`` at the image's size
            (:func:`map_file_name`), and the table gets a ``map_path`` column.
        partition_size: paths per partition / task (default: ``predict_batch``).
        threads_per_worker: engine threads in each worker process (default: the host's
            cores ÷ its worker processes, :func:`threads_plan`).

    Returns:
        a dask DataFrame with the columns ``path, score, is_anomalous, threshold, model_id,
        error`` (+ ``map_path``); a row per path; ``error`` is NA, or says why the path
        could not be scored (then ``score`` is NaN and ``is_anomalous`` NA). Compute it on
        ``client`` (``df.compute()`` when it is the default client, else
        ``client.compute(df)``): the detector's bytes were sent to that cluster.
    """
    predict_batch = _predict_batch(predict_batch, deprecated, "bgad.dask.score")
    dask = _require_dask()
    import dask.dataframe as dd

    paths = _check_paths(paths)
    data = _detector_bytes(detector)
    mid = model_id_of(data)
    _load_checked(data, mid)
    maps = None
    if maps_dir is not None:
        maps = os.fspath(maps_dir)
        Path(maps).mkdir(parents=True, exist_ok=True)
    if int(predict_batch) < 1:
        raise BGADError(f"predict_batch must be at least 1, got {predict_batch}")
    parts = _partitions(paths, predict_batch if partition_size is None else partition_size)
    client = _client_or_none(client)
    if client is not None:
        plan = threads_plan(client, threads_per_worker)
        send_detector(client, data, mid)
        shared = None  # the workers' DetectorPlugin holds the bytes
    else:
        plan = None
        shared = dask.delayed(data, name=f"bgad-detector-{mid}", pure=True)
    task = dask.delayed(score_partition, pure=True)
    chunks = [task(mid, part, int(predict_batch), maps, plan, shared) for part in parts]
    meta = _frame(_empty_rows(), maps is not None)
    return dd.from_delayed(chunks, meta=meta, verify_meta=False)


# ---------------------------------------------------------------------- score to a folder, resumable


def _paths_digest(paths: Sequence[str]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()


def _part_name(index: int, fmt: str) -> str:
    return f"part-{index:05d}.{fmt}"


def _write_table(path: Path, frame, fmt: str) -> None:
    """Writes a partition's table atomically (temporary file, fsync, rename)."""
    from .weights import _write_atomic

    buf = _pyio.BytesIO()
    if fmt == "parquet":
        frame.to_parquet(buf, index=False)
    else:
        buf.write(frame.to_csv(index=False).encode())
    _write_atomic(path, buf.getvalue())


def default_format() -> str:
    """``"parquet"`` when pyarrow is installed, else ``"csv"``."""
    try:
        import pyarrow  # noqa: F401
        return "parquet"
    except ImportError:
        return "csv"


def score_to_dir(detector: Any, paths: Sequence[Union[str, os.PathLike]], out_dir: Union[str, os.PathLike],
                 client=None, partition_size: int = 1024, predict_batch: int = 32, maps: bool = False,
                 fmt: Optional[str] = None, threads_per_worker: Optional[int] = None,
                 on_partition: Optional[Callable[[int, int], None]] = None, **deprecated: Any) -> Dict[str, Any]:
    """Scores ``paths`` into ``out_dir``, resumably; what ``bgad predict --scheduler`` runs.

    The paths are sorted and cut into partitions of ``partition_size``; partition ``i`` is
    written as ``part-{i:05d}.parquet`` (or ``.csv``) atomically when it finishes, in any
    order. ``_manifest.json`` records the model id, the paths' digest, the partition size
    and the format: a second run with the same inputs scores only the partitions without a
    file, so an interrupted run resumes and no row is written twice; a run with other
    inputs into the same folder is refused. Maps (``maps=True``) go to ``out_dir/maps``.
    ``on_partition(index, done)`` is called after each file is written. ``predict_batch``:
    images per engine call on a worker (``batch_size`` is its deprecated old name).

    Returns:
        ``{"partitions", "skipped", "written", "rows", "errors", "format", "model_id", "seconds"}``
        (``rows`` and ``errors`` count this run's partitions).
    """
    predict_batch = _predict_batch(predict_batch, deprecated, "bgad.dask.score_to_dir")
    _require_distributed()
    from distributed import as_completed

    t0 = time.perf_counter()
    fmt = fmt or default_format()
    if fmt not in ("parquet", "csv"):
        raise BGADError(f"format must be 'parquet' or 'csv', got {fmt!r}")
    paths = sorted(_check_paths(paths))
    if len(set(paths)) != len(paths):
        raise BGADError("the list of paths names some image twice")
    data = _detector_bytes(detector)
    mid = model_id_of(data)
    _load_checked(data, mid)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"model_id": mid, "paths": len(paths), "paths_sha256": _paths_digest(paths),
                "partition_size": int(partition_size), "format": fmt, "maps": bool(maps)}
    mpath = out / MANIFEST
    if mpath.is_file():
        try:
            old = json.loads(mpath.read_text())
        except (OSError, ValueError) as exc:
            raise BGADError(f"{mpath}: unreadable manifest ({exc}); use another --out folder") from None
        diff = [k for k in manifest if old.get(k) != manifest[k]]
        if diff:
            raise BGADError(f"{out} holds a run with other inputs (different {', '.join(diff)}); "
                            "use another --out folder or remove it")
    else:
        from .weights import _write_atomic

        _write_atomic(mpath, (json.dumps(manifest, indent=1) + "\n").encode())
    for leftover in out.glob("part-*.tmp"):  # temporary files of a run killed while writing
        leftover.unlink()
    parts = _partitions(paths, partition_size)
    todo = [i for i in range(len(parts)) if not (out / _part_name(i, fmt)).is_file()]
    summary = {"partitions": len(parts), "skipped": len(parts) - len(todo), "written": 0, "rows": 0,
               "errors": 0, "format": fmt, "model_id": mid, "seconds": 0.0}
    if todo:
        maps_dir = str(out / "maps") if maps else None
        if maps_dir:
            Path(maps_dir).mkdir(exist_ok=True)
        plan = threads_plan(client, threads_per_worker)
        send_detector(client, data, mid)
        run = uuid.uuid4().hex[:8]  # keys of this call only (a resume never meets a cancelled key)
        futures = {}
        for i in todo:
            f = client.submit(score_partition, mid, parts[i], int(predict_batch), maps_dir, plan,
                              key=f"bgad-score-{mid}-{run}-{i:05d}", pure=False)
            futures[f] = i
        try:
            for fut in as_completed(futures):
                i = futures[fut]
                frame = fut.result()
                _write_table(out / _part_name(i, fmt), frame, fmt)
                summary["written"] += 1
                summary["rows"] += len(frame)
                summary["errors"] += int(frame["error"].notna().sum())
                fut.release()
                if on_partition is not None:
                    on_partition(i, summary["written"])
        finally:
            client.cancel(list(futures))
    summary["seconds"] = time.perf_counter() - t0
    return summary


def read_dir(out_dir: Union[str, os.PathLike]):
    """The whole table :func:`score_to_dir` wrote (pandas), partitions in order."""
    _require_dask()
    import pandas as pd

    out = Path(out_dir)
    files = sorted(out.glob("part-*.parquet")) or sorted(out.glob("part-*.csv"))
    if not files:
        raise BGADError(f"no partition files in {out}")
    read = pd.read_parquet if files[0].suffix == ".parquet" else pd.read_csv
    return pd.concat([read(f) for f in files], ignore_index=True)


# ---------------------------------------------------------------------- fit many products


def _fit_one(spec: Dict[str, Any], threads_plan_: Optional[Dict[str, int]]) -> Dict[str, Any]:
    """Fits and saves one spec in this process; never raises (the error goes in the row)."""
    t0 = time.perf_counter()
    row = {"name": str(spec.get("name", "")), "out": str(spec.get("out", "")), "model_id": None,
           "seconds": 0.0, "error": None}
    try:
        from . import set_num_threads
        from .detector import Detector

        threads = _engine_threads_here(threads_plan_)
        if threads:
            set_num_threads(threads)
        params = dict(spec.get("params") or {})
        params["progress"] = False  # no progress bars on a worker
        det = Detector(**params)
        det.fit_folders(spec["normal"], spec.get("anomalous"), spec.get("masks"),
                        skip_bad=bool(spec.get("skip_bad", False)))
        Path(spec["out"]).parent.mkdir(parents=True, exist_ok=True)
        det.save(spec["out"])
        row["model_id"] = model_id_of(Path(spec["out"]).read_bytes())
    except Exception as exc:  # reported in the table: the other specs go on
        row["error"] = f"{type(exc).__name__}: {exc}" if not isinstance(exc, BGADError) else str(exc)
    row["seconds"] = time.perf_counter() - t0
    return row


def check_specs(specs: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Checks the specs' shape before anything runs: a list of dicts with ``name``,
    ``normal`` and ``out`` (``anomalous``, ``masks``, ``params``, ``skip_bad`` optional), unique
    names and outputs. Raises BGADError naming the first problem."""
    if not isinstance(specs, (list, tuple)) or not specs:
        raise BGADError("specs must be a non-empty list of product specs")
    allowed = {"name", "normal", "anomalous", "masks", "params", "out", "skip_bad"}
    names, outs = set(), set()
    out = []
    for k, spec in enumerate(specs):
        if not isinstance(spec, dict):
            raise BGADError(f"spec {k}: must be an object with name, normal, out, ..., got {type(spec).__name__}")
        label = spec.get("name", k)
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise BGADError(f"spec {label!r}: unknown key(s) {', '.join(unknown)} "
                            f"(allowed: {', '.join(sorted(allowed))})")
        for key in ("name", "normal", "out"):
            if not spec.get(key):
                raise BGADError(f"spec {label!r}: missing {key!r}")
        if spec.get("params") is not None and not isinstance(spec["params"], dict):
            raise BGADError(f"spec {label!r}: params must be an object of Detector parameters")
        if spec["name"] in names:
            raise BGADError(f"spec name {spec['name']!r} appears twice")
        o = os.path.abspath(os.fspath(spec["out"]))
        if o in outs:
            raise BGADError(f"spec {label!r}: output {spec['out']} is written by another spec too")
        names.add(spec["name"])
        outs.add(o)
        out.append(dict(spec))
    return out


def fit_many(specs: Sequence[Dict[str, Any]], client=None, threads_per_worker: Optional[int] = None):
    """Trains one detector per spec in parallel and writes each to its ``out`` file.

    A spec is a dict: ``name``, ``normal`` (folder, glob or ``.txt`` list of normal images),
    optional ``anomalous`` and ``masks`` (the same kinds), ``params`` (Detector parameters),
    ``skip_bad``, and ``out`` (the detector file, written atomically by ``Detector.save``).
    Each fit is :meth:`bgad.Detector.fit_folders` on a worker; a spec that fails (missing
    folder, bad parameter, unreadable image) gets its ``error`` in the table and no file,
    while the others finish.

    Args:
        client: a ``distributed.Client``; None → the current client if any, else (or with
            False) the specs run one after another in this process.
        threads_per_worker: engine threads per worker process (default :func:`threads_plan`).

    Returns:
        a pandas DataFrame with one row per spec (spec order): ``name, out, model_id, seconds,
        error`` (``error`` NA when the file was written).
    """
    _require_dask()
    import pandas as pd

    specs = check_specs(specs)
    client = _client_or_none(client)
    if client is None:
        rows = [_fit_one(s, None) for s in specs]
    else:
        plan = threads_plan(client, threads_per_worker)
        run = uuid.uuid4().hex[:8]  # keys of this call only (a retry never meets a cancelled key)
        futures = [client.submit(_fit_one, s, plan, pure=False, key=f"bgad-fit-{run}-{k}")
                   for k, s in enumerate(specs)]
        rows = client.gather(futures)
    frame = pd.DataFrame(rows, columns=list(FIT_COLUMNS))
    for c in ("name", "out", "model_id", "error"):
        frame[c] = frame[c].astype("string")
    return frame


def connect(scheduler: str):
    """``(client, cluster)`` for a ``--scheduler`` value: ``local`` or ``local:N`` starts a
    LocalCluster of N worker processes (default: one per core) with one Dask thread each;
    anything else is a scheduler address (``tcp://host:8786``) or a scheduler file
    (``*.json``). ``cluster`` is None for an address; close both when done."""
    distributed = _require_distributed()
    text = str(scheduler).strip()
    if text == "local" or text.startswith("local:"):
        n = _cores()
        if ":" in text:
            try:
                n = int(text.split(":", 1)[1])
            except ValueError:
                raise BGADError(f"--scheduler local:N needs a number of workers, got {text!r}") from None
            if n < 1:
                raise BGADError(f"--scheduler local:N needs at least one worker, got {n}")
        environ = dict(os.environ)
        try:
            cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                               dashboard_address=":0")
        finally:
            # the nannies set OPENBLAS_NUM_THREADS=1 (and OMP_, MKL_...) in THIS process's
            # environment to pass it to the workers: later subprocesses would inherit it
            os.environ.clear()
            os.environ.update(environ)
        return distributed.Client(cluster), cluster
    if text.endswith(".json"):
        return distributed.Client(scheduler_file=text), None
    return distributed.Client(text), None


__all__ = ["score", "score_partition", "worker_state", "send_detector", "DetectorPlugin", "plugin_name",
           "score_to_dir", "read_dir", "fit_many", "check_specs", "connect", "threads_plan", "model_id_of", "map_file_name", "default_format", "COLUMNS", "FIT_COLUMNS",
           "MANIFEST", "CACHE_SIZE"]
