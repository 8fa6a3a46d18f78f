"""Run one function over many items: a local process pool (default) or a Dask cluster.

``make_executor(workers, cluster)`` returns an object with ``map(fn, items)`` that yields
``fn(item)`` for every item *as each finishes* (any order), so a caller can journal every result
the moment it exists (resumable batches: a killed run loses only the items in flight).

Why Dask distributed rather than Ray: the per-file work here is a plain Python function over a
file path that writes its own output; Dask's scheduler + workers run exactly that with one small,
pure-Python, BSD-licensed dependency that installs from PyPI on any platform, and a cluster is
one ``dask scheduler`` plus ``dask worker ADDRESS`` per machine (or dask-jobqueue/-kubernetes on
a hospital's HPC or k8s). Ray Data would add a large binary runtime (object store, raylet) for a
workload that never shares objects between tasks.

Both backends keep a bounded window of tasks in flight (a few per worker), never the whole list:
the scheduler's bookkeeping stays constant per item however large the archive (10^6 files).
Functions and items must be picklable; on a cluster ``fn`` must be importable on the workers
(install echocmr there) and every path must be visible at the same place on every worker (a
shared file system), since workers read the inputs and write the outputs themselves.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures import Executor as Executor_
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Protocol

from .errors import ConfigError

IN_FLIGHT_PER_WORKER = 4


class Executor(Protocol):
    """``map(fn, items)``: results in completion order; ``close()`` releases the workers."""

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]: ...

    def close(self) -> None: ...


@dataclass
class InProcess:
    """No pool (one worker, or too few items to pay for starting processes)."""

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        return (fn(item) for item in items)

    def close(self) -> None:
        pass


class LocalPool:
    """A pool on this machine, ``workers`` of them (0: one per core): processes, or threads for
    work that already runs in processes of its own (isolated decoders) and only waits here."""

    def __init__(self, workers: int = 0, threads: bool = False):
        self.workers = workers or os.cpu_count() or 1
        self.threads = threads
        self._pool: Executor_ | None = None

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        if self._pool is None:
            kind = ThreadPoolExecutor if self.threads else ProcessPoolExecutor
            self._pool = kind(max_workers=self.workers)
        pool = self._pool
        return _windowed(lambda item: pool.submit(fn, item), _first_done, items,
                         self.workers * IN_FLIGHT_PER_WORKER)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


class DaskCluster:
    """Tasks on a running Dask distributed scheduler at ``address`` (``tcp://host:port``)."""

    def __init__(self, address: str, connect_timeout_s: float = 30.0):
        try:
            from distributed import Client
        except ImportError as exc:
            raise ConfigError("--cluster needs Dask distributed: pip install 'echocmr[cluster]'") from exc
        try:
            self._client = Client(address, timeout=f"{connect_timeout_s}s", set_as_default=False)
        except OSError as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {address!r}: {exc}") from exc

    @property
    def workers(self) -> int:
        return max(sum(self._client.nthreads().values()), 1)

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        from distributed import as_completed

        client = self._client
        completed = as_completed(loop=client.loop)  # not the default client: ours is private

        def submit(item: Any) -> Any:
            # pure=False: every item runs (two equal items are still two files to ingest).
            future = client.submit(fn, item, pure=False)
            completed.add(future)
            return future

        def first_done(_: set) -> Any:
            return next(completed)

        return _windowed(submit, first_done, items, self.workers * IN_FLIGHT_PER_WORKER)

    def close(self) -> None:
        self._client.close()


def _first_done(pending: set) -> Any:
    done, _ = wait(pending, return_when=FIRST_COMPLETED)
    return next(iter(done))


def _windowed(submit: Callable[[Any], Any], first_done: Callable[[set], Any], items: Iterable[Any],
              window: int) -> Iterator[Any]:
    """Keep at most ``window`` tasks in flight; yield each result as its task finishes.

    A task that raised re-raises here (the caller decides; per-item errors that are expected,
    like a rejected file, are returned as records by ``fn`` itself, never raised).
    """
    pending: set = set()
    iterator = iter(items)
    exhausted = False
    while True:
        while not exhausted and len(pending) < window:
            try:
                pending.add(submit(next(iterator)))
            except StopIteration:
                exhausted = True
        if not pending:
            return
        future = first_done(pending)
        pending.discard(future)
        yield future.result()


def make_executor(workers: int = 0, cluster: str = "", n_items: int | None = None,
                  threads: bool = False, connect_timeout_s: float = 30.0) -> Executor:
    """The cluster when an address is given, else a local pool (in-process for 1 worker or
    fewer than 4 items, where starting processes costs more than it saves); ``threads``: a
    thread pool, for work that runs in isolated processes of its own. ``connect_timeout_s``:
    how long to wait for the Dask scheduler before giving up."""
    if cluster:
        return DaskCluster(cluster, connect_timeout_s)
    if workers == 1 or (n_items is not None and n_items < 4):
        return InProcess()
    return LocalPool(workers, threads=threads)

