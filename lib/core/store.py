"""The content-addressed artifact store: every file a step hands on, by its sha256.

ARCHITECTURE.md, "The store". A step on one machine puts its outputs here; a step on another
machine (its own `TRAINFLOW_HOME`, no shared disk) gets them by hash into its local cache.
Prefect's result records live beside the objects (`read_record`/`write_record`), so a step
cached on one machine is a cache hit on every machine that shares the store.

``TRAINFLOW_STORE`` is a folder (default ``$TRAINFLOW_HOME/store``) or
``s3://bucket/prefix`` on any S3-compatible service. Layout, the same in both:
``objects/<sha[:2]>/<sha256>`` and ``records/<key>``.

S3 goes through boto3 rather than `pyarrow.fs.S3FileSystem`: boto3 reads the usual AWS
variables itself (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
``AWS_REGION``, ``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_S3``, profiles and instance roles)
with nothing mapped by hand, and its `upload_file` aborts a failed multipart upload, while
closing an Arrow S3 output stream after an exception completes it with the bytes written so
far. Uploads are all-or-nothing: a small file is one PUT, a large one a multipart upload that
becomes visible only when completed, so a killed uploader leaves no object under the key
(only an incomplete upload, which a bucket lifecycle rule `AbortIncompleteMultipartUpload`
reclaims). A folder store hard-links the file in (atomic, no copy) or copies it under a
temporary name and renames it.

Every object is checked against its hash when fetched: bytes that do not match are refused
and fetched once more; a second mismatch removes the object from the store (so the cache
entry that names it expires and its step runs again) and is an `StoreError`.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lib.core.atomic import atomic_path
from lib.core.errors import ExpectedError
from lib.core.faults import fault_point
from lib.core.hashing import sha256_file
from lib.core.refs import FileRef

S3_SCHEME = "s3://"
FETCH_ATTEMPTS = 2
"""A file that does not match its hash is fetched once more before the store gives up."""
_RECORD_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class StoreError(ExpectedError):
    """The store cannot hand out a file: missing, unreachable, or bytes that fail their hash."""


class _Mismatch(Exception):
    """Fetched bytes that do not hash to their key (internal: the fetch is retried)."""


class Store(abc.ABC):
    """Files by content hash, fetched into a local cache; small records by key.

    Subclasses move bytes (`_has`, `_upload`, `_download`, `_read`, `_write`, `_delete`);
    hashing, verification and the cache are here, the same for every backend.

    Attributes:
        location: the store as the user named it (`TRAINFLOW_STORE`), for messages.
        cache: this machine's folder of fetched objects, ``<cache>/<sha256>/<name>``.
    """

    def __init__(self, location: str, cache: Path) -> None:
        self.location = location
        self.cache = cache

    def put(self, path: Path, sha256: str | None = None) -> str:
        """Store the file at `path` (once: an object already there is kept); return its key.

        Args:
            path: a file.
            sha256: its hash, when the caller has just computed it.
        """
        sha256 = sha256 or sha256_file(path)
        key = _object_key(sha256)
        if not self._has(key):
            self._upload(path, key)
        return sha256

    def get(self, sha256: str, name: str) -> Path:
        """A local copy of object `sha256`, named `name`, checked against its hash.

        A cached copy whose bytes do not match is deleted and fetched again.

        Raises:
            StoreError: the store has no such object, cannot be reached, or twice handed out
                bytes that do not match (the object is then removed from the store).
        """
        key = _object_key(sha256)
        target = self.cache / sha256 / Path(name).name
        if target.is_file():
            if verified(target, sha256):
                return target
            target.unlink()
        for _ in range(FETCH_ATTEMPTS):
            try:
                with atomic_path(target) as temporary:
                    if not self._download(key, temporary):
                        raise StoreError(
                            f"{self.location} has no object {sha256} ({name}): it was "
                            "removed or never stored, so the step that made it runs again "
                            "next time"
                        )
                    if sha256_file(temporary) != sha256:
                        raise _Mismatch
            except _Mismatch:
                continue
            return target
        self._delete(key)
        raise StoreError(
            f"{name} (sha256 {sha256}) in {self.location} does not match its hash: the object "
            "was removed from the store, so the step that made it runs again next time"
        )

    @abc.abstractmethod
    def check(self) -> None:
        """Make sure the store answers, before a run depends on it.

        Raises:
            StoreError: it cannot be reached, refuses these credentials, or has no bucket.
        """

    def exists(self, sha256: str) -> bool:
        """Whether the store holds object `sha256` (its bytes are checked only by `get`)."""
        return self._has(_object_key(sha256))

    def read_record(self, key: str) -> bytes | None:
        """The record stored under `key`, or None."""
        return self._read(_record_key(key))

    def write_record(self, key: str, content: bytes) -> None:
        """Store `content` under `key`, replacing what was there, in one piece."""
        self._write(_record_key(key), content)

    @abc.abstractmethod
    def _has(self, key: str) -> bool: ...

    @abc.abstractmethod
    def _upload(self, path: Path, key: str) -> None: ...

    @abc.abstractmethod
    def _download(self, key: str, target: Path) -> bool:
        """Write the object at `key` to `target`; False if there is none."""

    @abc.abstractmethod
    def _read(self, key: str) -> bytes | None: ...

    @abc.abstractmethod
    def _write(self, key: str, content: bytes) -> None: ...

    @abc.abstractmethod
    def _delete(self, key: str) -> None: ...


class FolderStore(Store):
    """A store in a folder: this machine's home by default, or a mounted shared folder."""

    def __init__(self, root: Path, cache: Path) -> None:
        super().__init__(str(root), cache)
        self.root = root

    def check(self) -> None:
        """Nothing to reach: the folder is made on the first write."""

    def _has(self, key: str) -> bool:
        return (self.root / key).is_file()

    def _upload(self, path: Path, key: str) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)  # atomic, and no second copy of the bytes
            return
        except FileExistsError:
            return
        except OSError:
            pass  # another file system (or links refused): copy, then rename
        with atomic_path(target) as temporary:
            shutil.copyfile(path, temporary)
            fault_point("upload")

    def _download(self, key: str, target: Path) -> bool:
        try:
            shutil.copyfile(self.root / key, target)
        except FileNotFoundError:
            return False
        return True

    def _read(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None

    def _write(self, key: str, content: bytes) -> None:
        with atomic_path(self.root / key) as temporary:
            temporary.write_bytes(content)

    def _delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)


class S3Store(Store):
    """A store in an S3 bucket (AWS or any S3-compatible service), through boto3."""

    def __init__(self, bucket: str, prefix: str, cache: Path) -> None:
        import boto3

        super().__init__(f"{S3_SCHEME}{bucket}/{prefix}".rstrip("/"), cache)
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        with self._errors():  # a session of its own reads the environment as it is now
            self._client = boto3.session.Session().client("s3")

    def check(self) -> None:
        with self._errors():
            try:  # a listing needs the bucket and signed, permitted credentials
                self._client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
            except Exception as error:
                if _is_missing(error):
                    endpoint = self._client.meta.endpoint_url
                    raise StoreError(
                        f"store {self.location}: no bucket {self.bucket!r} at {endpoint}"
                    ) from None
                raise

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _has(self, key: str) -> bool:
        with self._errors():
            try:
                self._client.head_object(Bucket=self.bucket, Key=self._name(key))
            except Exception as error:
                if _is_missing(error):
                    return False
                raise
        return True

    def _upload(self, path: Path, key: str) -> None:
        with self._errors():
            # One PUT, or a multipart upload that is visible only once completed.
            self._client.upload_file(
                str(path), self.bucket, self._name(key), Callback=_upload_progress
            )

    def _download(self, key: str, target: Path) -> bool:
        with self._errors():
            try:
                self._client.download_file(self.bucket, self._name(key), str(target))
            except Exception as error:
                if _is_missing(error):
                    return False
                raise
        return True

    def _read(self, key: str) -> bytes | None:
        with self._errors():
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=self._name(key))
            except Exception as error:
                if _is_missing(error):
                    return None
                raise
            return bytes(response["Body"].read())

    def _write(self, key: str, content: bytes) -> None:
        with self._errors():
            self._client.put_object(Bucket=self.bucket, Key=self._name(key), Body=content)

    def _delete(self, key: str) -> None:
        with self._errors():
            self._client.delete_object(Bucket=self.bucket, Key=self._name(key))

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """botocore's errors (no credentials, unreachable endpoint, denied) as one line."""
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        try:
            yield
        except EndpointConnectionError as error:
            endpoint = self._client.meta.endpoint_url
            raise StoreError(f"store {self.location}: cannot reach {endpoint}") from error
        except (BotoCoreError, ClientError) as error:
            raise StoreError(f"store {self.location}: {error}") from error


def open_store(location: str, cache: Path) -> Store:
    """The store `location` names (a folder, or ``s3://bucket/prefix``), caching into `cache`.

    Raises:
        StoreError: another scheme, or an S3 location without a bucket.
    """
    if location.startswith(S3_SCHEME):
        bucket, _, prefix = location.removeprefix(S3_SCHEME).partition("/")
        if not bucket:
            raise StoreError(f"TRAINFLOW_STORE={location}: expected s3://bucket/prefix")
        return S3Store(bucket, prefix, cache)
    if "://" in location:
        raise StoreError(f"TRAINFLOW_STORE={location}: expected a folder or s3://bucket/prefix")
    return FolderStore(Path(location).expanduser().resolve(), cache)


def materialize(ref: FileRef, store: Store) -> Path:
    """A local path holding `ref`'s bytes: its own path if that matches, else a fetched copy.

    A descriptor made on another machine names a path there; here it may be missing, or
    hold other bytes. Either way the file comes from the store, by hash.
    """
    path = Path(ref.path)
    if path.is_file() and verified(path, ref.sha256):
        return path
    return store.get(ref.sha256, path.name)


def verified(path: Path, sha256: str) -> bool:
    """Whether the file at `path` hashes to `sha256` (hashed once per version of the file)."""
    status = path.stat()
    return _hash_of(str(path), status.st_ino, status.st_size, status.st_mtime_ns) == sha256


@functools.lru_cache(maxsize=1024)
def _hash_of(path: str, inode: int, size: int, mtime_ns: int) -> str:
    """sha256 of a file as it was at (inode, size, mtime): a rewrite changes the key."""
    return sha256_file(Path(path))


def _object_key(sha256: str) -> str:
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"Expected a sha256 in hex. Received: sha256={sha256!r}")
    return f"objects/{sha256[:2]}/{sha256}"


def _record_key(key: str) -> str:
    if not _RECORD_KEY.fullmatch(key):
        raise ValueError(f"Expected a record key of letters, digits, '.-_'. Received: {key!r}")
    return f"records/{key}"


def _is_missing(error: Exception) -> bool:
    """Whether a botocore error says "no such key" or bucket (HEAD answers a bare 404)."""
    response: Any = getattr(error, "response", None) or {}
    code = response.get("Error", {}).get("Code")
    return code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket")


def _upload_progress(_bytes: int) -> None:
    """boto3's progress callback: where a crash test kills an upload midway."""
    fault_point("upload")
