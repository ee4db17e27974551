"""Engines that run one notebook attempt, and the executor that dispatches them.

- :mod:`~ridelake.core.engines.base`: the task and outcome types and what every engine shares
  (papermill's error reading, the notebook's provenance stamp, the IPC kernel manager);
- :mod:`~ridelake.core.engines.fresh`: :class:`PapermillEngine`, one fresh kernel per notebook;
- :mod:`~ridelake.core.engines.warm`: :class:`WarmEngine`, one kernel per worker, reused;
- :mod:`~ridelake.core.engines.kernelside`: what a warm kernel runs between notebooks;
- :mod:`~ridelake.core.engines.executor`: the executor interface and the thread pool.

:mod:`ridelake.core.engine` re-exports the public names. This package imports nothing at import
time (a warm kernel imports :mod:`kernelside` from it).
"""
