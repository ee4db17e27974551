"""The warehouse's files, on a local folder or an object store, through ``pyarrow.fs``.

A **location** is a local path (or ``file://`` URL) or an object-store URL
(``s3://bucket/prefix/...``). Every function here takes locations as text and works on both, so
the staging hand-off (:mod:`ridelake.tables.source`) and maintenance
(:mod:`ridelake.ops.maintenance`) read, write, list and delete the same way wherever the
warehouse is.

S3 settings come from the environment, as the AWS tools read them:

- credentials: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (``AWS_SESSION_TOKEN``), or any
  other source of the AWS SDK's default chain (a profile, an instance role); they are never
  passed on as settings, so no record or catalog property can hold them;
- the endpoint of an S3-compatible server (MinIO, Ceph, a local test server):
  ``RIDELAKE_S3_ENDPOINT``, else ``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL``
  (``http://host:port`` or ``https://...``); none: Amazon S3 itself;
- the region: ``AWS_REGION``, else ``AWS_DEFAULT_REGION``, else ``us-east-1`` (always given, so
  pyiceberg never asks Amazon where a bucket lives).

:func:`catalog_properties` hands the endpoint and region to pyiceberg (``s3.endpoint``,
``s3.region``); :func:`filesystem` builds the same ``pyarrow.fs.S3FileSystem``
(``endpoint_override``, ``region``).

Atomicity: :func:`write_text` replaces a file in one step (a local temporary file and
``os.replace``; one ``PUT`` on an object store), so a reader sees the old content or the new one.
An object store has no folder rename: :func:`move_dir` moves its files one by one, so a folder is
published by writing, after it, the record that names it.

Folders on an object store are prefixes; ``pyarrow`` keeps a folder whose last file it deleted or
moved as an empty marker object (``prefix/``). Readers ignore them; :func:`move_dir` and
:func:`prune_empty_dirs` remove those left in the folders they empty.
"""

from __future__ import annotations

import os
import posixpath
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow.fs as pafs

from ridelake.errors import ConfigError

__all__ = [
    "S3_ENDPOINT_ENV",
    "S3_SCHEMES",
    "FileEntry",
    "is_object_store",
    "normalize",
    "join",
    "s3_endpoint",
    "s3_region",
    "catalog_properties",
    "filesystem",
    "exists",
    "is_file",
    "is_dir",
    "make_dir",
    "read_text",
    "write_text",
    "list_files",
    "list_children",
    "delete_file",
    "delete_dir",
    "prune_empty_dirs",
    "move_dir",
]

#: The endpoint of an S3-compatible server (wins over ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``).
S3_ENDPOINT_ENV = "RIDELAKE_S3_ENDPOINT"
#: URL schemes served by the S3 file system.
S3_SCHEMES = ("s3", "s3a", "s3n")

_fs_lock = threading.Lock()
_filesystems: dict[tuple[str | None, str], pafs.FileSystem] = {}


@dataclass(frozen=True)
class FileEntry:
    """One file found by :func:`list_files`.

    Attributes:
        location: the file, in the form of the location listed (path or URL).
        size: bytes.
        mtime: last modification, epoch seconds (an object store keeps whole seconds).
    """

    location: str
    size: int
    mtime: float


def is_object_store(location: str) -> bool:
    """Tell whether a location is an object-store URL (not a local path or ``file://`` URL)."""
    return "://" in location and not location.startswith("file:")


def _local_path(location: str) -> str:
    if location.startswith("file:"):
        return os.path.normpath(unquote(urlparse(location).path))
    return os.path.normpath(os.path.abspath(os.path.expanduser(location)))


def normalize(location: str) -> str:
    """A location in one spelling: an absolute normalised path, or ``scheme://bucket/key`` without
    ``.``/``..``/doubled or trailing slashes (so locations compare as text)."""
    if not is_object_store(location):
        return _local_path(location)
    scheme, _, rest = location.partition("://")
    path = posixpath.normpath("/" + rest).lstrip("/")
    return f"{scheme.lower()}://{path}"


def join(location: str, *parts: str) -> str:
    """``location/part/...`` for a path or an URL."""
    if not is_object_store(location):
        return os.path.join(location, *parts)
    return "/".join([location.rstrip("/"), *(p.strip("/") for p in parts)])


def s3_endpoint() -> str | None:
    """The S3 endpoint to use (see the module doc); None for Amazon S3."""
    for var in (S3_ENDPOINT_ENV, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        value = os.environ.get(var, "").strip()
        if value:
            return value
    return None


def s3_region() -> str:
    """The S3 region (see the module doc)."""
    return (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1").strip()


def _scheme(location: str) -> str:
    scheme = location.partition("://")[0].lower()
    if scheme not in S3_SCHEMES:
        raise ConfigError(f"{location}: object stores other than S3 ({', '.join(S3_SCHEMES)}://) are not supported "
                          "for the warehouse")
    return scheme


def catalog_properties(warehouse: str) -> dict[str, str]:
    """The pyiceberg FileIO properties a warehouse needs: for S3 the region and the endpoint (when
    set); nothing for a local folder. Credentials are left to the AWS SDK's default chain."""
    if not is_object_store(warehouse):
        return {}
    _scheme(warehouse)
    props = {"s3.region": s3_region()}
    endpoint = s3_endpoint()
    if endpoint:
        props["s3.endpoint"] = endpoint
    return props


def filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    """The file system of a location and the location's path within it.

    Returns:
        ``(LocalFileSystem, absolute path)`` or ``(S3FileSystem, "bucket/key")``; the S3 file
        system is made once per endpoint and region in a process.
    """
    if not is_object_store(location):
        return pafs.LocalFileSystem(), _local_path(location)
    _scheme(location)
    key = (s3_endpoint(), s3_region())
    with _fs_lock:
        fs = _filesystems.get(key)
        if fs is None:
            fs = _filesystems[key] = pafs.S3FileSystem(endpoint_override=key[0], region=key[1])
    return fs, normalize(location).partition("://")[2]


def _info(location: str) -> pafs.FileInfo:
    fs, path = filesystem(location)
    return fs.get_file_info(path)


def exists(location: str) -> bool:
    """Tell whether a file or folder (an object-store prefix holding objects) is there."""
    return _info(location).type != pafs.FileType.NotFound


def is_file(location: str) -> bool:
    """Tell whether a location is a file."""
    return _info(location).type == pafs.FileType.File


def is_dir(location: str) -> bool:
    """Tell whether a location is a folder (on an object store: a prefix holding objects)."""
    return _info(location).type == pafs.FileType.Directory


def make_dir(location: str) -> None:
    """Create a local folder and its parents; nothing on an object store (prefixes need no creating)."""
    if not is_object_store(location):
        os.makedirs(_local_path(location), exist_ok=True)


def read_text(location: str) -> str | None:
    """A text file's content (UTF-8); None when it does not exist.

    Raises:
        OSError: it exists but cannot be read.
    """
    fs, path = filesystem(location)
    try:
        with fs.open_input_stream(path) as stream:
            return stream.read().decode("utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        if fs.get_file_info(path).type == pafs.FileType.NotFound:
            return None
        raise


def write_text(location: str, text: str) -> None:
    """Replace a text file atomically (see the module doc)."""
    fs, path = filesystem(location)
    data = text.encode("utf-8")
    if is_object_store(location):
        with fs.open_output_stream(path) as stream:
            stream.write(data)
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _location_of(location: str, path: str) -> str:
    """A path the file system returned, in the spelling of ``location``."""
    if not is_object_store(location):
        return os.path.normpath(path)
    return f"{normalize(location).partition('://')[0]}://{path}"


def list_files(location: str) -> list[FileEntry]:
    """Every file below a folder, recursively (none when the folder does not exist); symbolic links
    of a local folder are not followed nor listed."""
    if not is_object_store(location):
        return _list_local(_local_path(location))
    fs, path = filesystem(location)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return []
    out = []
    for info in fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True)):
        if info.type != pafs.FileType.File:
            continue
        mtime = info.mtime.timestamp() if info.mtime is not None else 0.0
        out.append(FileEntry(_location_of(location, info.path), int(info.size or 0), mtime))
    return out


def _list_local(top: str) -> list[FileEntry]:
    """Regular files below a local folder; symbolic links (to files or folders) are neither listed
    nor followed (``pyarrow``'s local listing follows linked folders)."""
    out = []
    for folder, dirs, files in os.walk(top, followlinks=False):
        for name in files:
            path = os.path.join(folder, name)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if not os.path.islink(path):
                out.append(FileEntry(os.path.normpath(path), st.st_size, st.st_mtime))
    return out


def list_children(location: str) -> list[tuple[str, bool]]:
    """The names directly inside a folder, each with whether it is a folder (none when absent)."""
    fs, path = filesystem(location)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return []
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=False, allow_not_found=True))
    return [(posixpath.basename(i.path.rstrip("/")), i.type == pafs.FileType.Directory) for i in infos]


def delete_file(location: str) -> bool:
    """Delete one file; False when it was not there."""
    fs, path = filesystem(location)
    try:
        fs.delete_file(path)
    except FileNotFoundError:
        return False
    except OSError:
        if fs.get_file_info(path).type == pafs.FileType.NotFound:
            return False
        raise
    return True


def delete_dir(location: str) -> None:
    """Delete a folder and everything in it (nothing when it is not there)."""
    fs, path = filesystem(location)
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return
    fs.delete_dir(path)


def move_dir(source: str, target: str) -> None:
    """Move a folder to a new name (``target`` must not exist): one rename on a local disk; on an
    object store each file is copied and deleted (see the module doc)."""
    if not is_object_store(source):
        os.replace(_local_path(source), _local_path(target))
        return
    fs, src = filesystem(source)
    _, dst = filesystem(target)
    for info in fs.get_file_info(pafs.FileSelector(src, recursive=True, allow_not_found=True)):
        if info.type == pafs.FileType.File:
            fs.move(info.path, dst + info.path[len(src):])
    delete_dir(source)  # the folder markers pyarrow left behind


def prune_empty_dirs(location: str) -> None:
    """Remove the empty folders strictly below a folder (those a clean-up emptied): local
    folders, or an object store's marker objects."""
    if not is_object_store(location):
        top = _local_path(location)
        if not os.path.isdir(top):
            return
        for folder, _dirs, _files in os.walk(top, topdown=False):
            if folder != top:
                try:
                    os.rmdir(folder)
                except OSError:
                    pass
        return
    fs, top = filesystem(location)
    if fs.get_file_info(top).type != pafs.FileType.Directory:
        return
    infos = fs.get_file_info(pafs.FileSelector(top, recursive=True, allow_not_found=True))
    nonempty: set[str] = set()
    for info in infos:
        if info.type == pafs.FileType.File:
            parent = posixpath.dirname(info.path)
            while len(parent) > len(top) and parent not in nonempty:
                nonempty.add(parent)
                parent = posixpath.dirname(parent)
    empty = {i.path.rstrip("/") for i in infos if i.type == pafs.FileType.Directory} - nonempty
    for folder in sorted(empty):
        if posixpath.dirname(folder) not in empty:  # the topmost of an empty branch: it goes whole
            fs.delete_dir(folder)
