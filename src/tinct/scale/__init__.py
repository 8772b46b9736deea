"""Colorization at scale: folders of files and lazy arrays over Dask.

:mod:`~tinct.scale.batch` colorizes a folder tree (locally or on a Dask
cluster, one task per file, a failed file never stops the batch), planned by
:mod:`~tinct.scale.planning`, each task being :mod:`~tinct.scale.file_task`, and
:mod:`~tinct.scale.distributed` colorizes Dask arrays lazily
(:func:`tinct.colorize_dask`) with one model per worker.
"""
