"""Input and output: the one image loader, size bounds, output folders and the one atomic writer.

* :func:`load_image` — any photo (every format Pillow reads, 8/16-bit, grayscale, palette, alpha, CMYK, EXIF
  orientation, first frame of animations, bundled photo names) → :class:`Photo` with an (H, W, 3) uint8 array, or
  one :class:`ImageError` saying why not (:mod:`cameras.io.images`).
* :class:`SizeLimits` — bounds on the decoded photo, the model input's longer side and the largest scale an
  explainer runs; :class:`SizeLimitError` says which and how to raise it (:mod:`cameras.io.limits`).
* :class:`OutputDir` — an output folder checked up front and created at the first write; :func:`lock_folder`
  (``OutputDir.lock``) keeps a second run out of it while one runs (:mod:`cameras.io.folders`).
* :func:`atomic_open` and ``write_bytes / write_text / write_json / write_csv / write_npy / write_image /
  write_figure`` — temporary file in the same folder, flush + fsync, :func:`os.replace`: an interrupted run never
  leaves half a file (:mod:`cameras.io.atomic`).
* :func:`file_digest` — the SHA-256 of a file's content, cached by (path, size, mtime): what keys a run's
  checkpoint (:mod:`cameras.io.digest`).
* :func:`write_run_record` / :func:`read_run_record` — ``run.json``, what a command ran and wrote
  (:mod:`cameras.io.runinfo`).
"""

from __future__ import annotations

from .atomic import (
    atomic_open,
    csv_cell,
    csv_text,
    temporary_name,
    to_jsonable,
    write_bytes,
    write_csv,
    write_figure,
    write_image,
    write_json,
    write_npy,
    write_text,
)
from .digest import file_digest
from .errors import ImageError, ImageNotFoundError, SizeLimitError
from .folders import LOCK_FILE, FolderLock, FolderLockedError, OutputDir, OutputDirError, check_output_dir, lock_folder
from .images import ImageSource, Photo, is_sample_name, load_image, source_name
from .limits import DEFAULT_LIMITS, SizeLimits
from .runinfo import RUN_FILE, RunRecordError, read_run_record, run_config, write_run_record

__all__ = [
    "DEFAULT_LIMITS",
    "LOCK_FILE",
    "RUN_FILE",
    "FolderLock",
    "FolderLockedError",
    "ImageError",
    "ImageNotFoundError",
    "ImageSource",
    "OutputDir",
    "OutputDirError",
    "Photo",
    "RunRecordError",
    "SizeLimitError",
    "SizeLimits",
    "atomic_open",
    "check_output_dir",
    "csv_cell",
    "csv_text",
    "file_digest",
    "is_sample_name",
    "load_image",
    "lock_folder",
    "read_run_record",
    "run_config",
    "source_name",
    "temporary_name",
    "to_jsonable",
    "write_bytes",
    "write_csv",
    "write_figure",
    "write_image",
    "write_json",
    "write_npy",
    "write_run_record",
    "write_text",
]
