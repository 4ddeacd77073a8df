"""The artifact store, in a folder and on a real S3 API (SeaweedFS on 127.0.0.1).

Bytes are checked against their hash whenever they are fetched; uploads are all-or-nothing,
even when the uploading process is SIGKILLed halfway.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lib.core.faults import FAULT_VARIABLE
from lib.core.refs import FileRef
from lib.core.store import FolderStore, S3Store, Store, StoreError, materialize, open_store
from tests.fixtures.seaweedfs import S3Server, use_s3_store

REPO_ROOT = Path(__file__).resolve().parents[3]
BIG_BYTES = 64 << 20  # past boto3's multipart threshold (8 MB): eight parts


def _s3_store(server: S3Server, prefix: str, cache: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    return open_store(use_s3_store(server, prefix, monkeypatch), cache)


@pytest.fixture(params=["folder", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    if request.param == "folder":
        return open_store(str(tmp_path / "store"), tmp_path / "cache")
    server = request.getfixturevalue("s3_server")
    return _s3_store(server, tmp_path.name, tmp_path / "cache", monkeypatch)


def _tamper_object(store: Store, sha256: str, content: bytes) -> None:
    """Replace the stored bytes of `sha256`, as a faulty disk or a careless hand would."""
    key = f"objects/{sha256[:2]}/{sha256}"
    if isinstance(store, FolderStore):
        (store.root / key).unlink()
        (store.root / key).write_bytes(content)
    else:
        assert isinstance(store, S3Store)
        store._client.put_object(Bucket=store.bucket, Key=f"{store.prefix}/{key}", Body=content)


def _file(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def test_a_file_put_is_fetched_back_by_its_hash(store: Store, tmp_path: Path) -> None:
    source = _file(tmp_path / "table.parquet", b"some table bytes")

    key = store.put(source)

    assert key == hashlib.sha256(b"some table bytes").hexdigest()
    assert store.exists(key) and not store.exists("0" * 64)
    fetched = store.get(key, "table.parquet")
    assert fetched == tmp_path / "cache" / key / "table.parquet"
    assert fetched.read_bytes() == b"some table bytes"
    assert store.put(source) == key  # once stored, kept


def test_a_tampered_cached_copy_is_refused_and_fetched_again(store: Store, tmp_path: Path) -> None:
    key = store.put(_file(tmp_path / "model.keras", b"the model"))
    cached = store.get(key, "model.keras")
    cached.write_bytes(b"the model, edited")

    again = store.get(key, "model.keras")

    assert again == cached and again.read_bytes() == b"the model"


def test_a_tampered_object_is_refused_in_one_line_and_removed(store: Store, tmp_path: Path) -> None:
    key = store.put(_file(tmp_path / "split.json", b'{"train": [1, 2]}'))
    _tamper_object(store, key, b'{"train": [1, 2, 3]}')

    with pytest.raises(
        StoreError, match=r"split.json \(sha256 [0-9a-f]{64}\) in .* does not match"
    ) as caught:
        store.get(key, "split.json")

    assert "\n" not in str(caught.value)
    assert not store.exists(key)  # so the cache entry naming it expires and recomputes
    assert not (tmp_path / "cache" / key / "split.json").exists()


def test_a_missing_object_is_one_line(store: Store) -> None:
    with pytest.raises(StoreError, match=r"has no object 0{64} \(history.json\)"):
        store.get("0" * 64, "history.json")


def test_records_are_written_whole_and_read_back(store: Store) -> None:
    assert store.read_record("abc123") is None
    store.write_record("abc123", b'{"result": 1}')
    store.write_record("abc123", b'{"result": 2}')
    assert store.read_record("abc123") == b'{"result": 2}'
    with pytest.raises(ValueError, match="record key"):
        store.write_record("../escape", b"")


def test_materialize_prefers_the_file_itself_and_else_fetches_it(
    store: Store, tmp_path: Path
) -> None:
    path = _file(tmp_path / "rows.parquet", b"rows")
    ref = FileRef.of(path)
    store.put(path)
    assert materialize(ref, store) == path

    other = _file(tmp_path / "other.parquet", b"other rows")
    other.replace(path)  # this machine's file is not the one described (written as ours are)
    assert materialize(ref, store).read_bytes() == b"rows"

    path.unlink()  # a descriptor made on another machine
    fetched = materialize(ref, store)
    assert fetched.parent.parent == tmp_path / "cache" and fetched.read_bytes() == b"rows"


def test_an_unknown_scheme_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"TRAINFLOW_STORE=gs://b/p: expected a folder or s3://"):
        open_store("gs://b/p", tmp_path)


def _killed_put(location: str, source: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    """`put` in a child process that SIGKILLs itself once some bytes are on their way."""
    code = (
        "import sys; from pathlib import Path; from lib.core.store import open_store; "
        "open_store(sys.argv[1], Path(sys.argv[2])).put(Path(sys.argv[3]))"
    )
    return subprocess.run(
        [sys.executable, "-c", code, location, str(cache), str(source)],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), FAULT_VARIABLE: "upload"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_killed_s3_upload_leaves_no_object(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _file(tmp_path / "pixels.parquet", os.urandom(BIG_BYTES))
    store = _s3_store(s3_server, tmp_path.name, tmp_path / "cache", monkeypatch)
    assert isinstance(store, S3Store)

    killed = _killed_put(store.location, source, tmp_path / "cache")

    assert killed.returncode == -9, killed.stderr
    key = FileRef.of(source).sha256
    assert not store.exists(key)
    listed = store._client.list_objects_v2(Bucket=store.bucket, Prefix=tmp_path.name)
    assert listed.get("KeyCount", 0) == 0
    # It was killed midway: a multipart upload had begun under the key, never completed.
    uploads = store._client.list_multipart_uploads(Bucket=store.bucket, Prefix=tmp_path.name)
    assert [upload["Key"] for upload in uploads.get("Uploads", [])] == [
        f"{tmp_path.name}/objects/{key[:2]}/{key}"
    ]
    assert store.put(source) == key and store.get(key, "pixels.parquet").stat().st_size == BIG_BYTES


def test_a_killed_copy_into_a_folder_store_leaves_no_object(tmp_path: Path) -> None:
    """A folder store on another file system copies (it cannot hard-link): killed, no object."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs a second file system (/dev/shm) to make the store copy")
    import tempfile

    with tempfile.TemporaryDirectory(dir=shm) as elsewhere:
        source = _file(Path(elsewhere) / "pixels.parquet", os.urandom(BIG_BYTES))
        killed = _killed_put(str(tmp_path / "store"), source, tmp_path / "cache")
        key = FileRef.of(source).sha256

    assert killed.returncode == -9, killed.stderr
    assert not FolderStore(tmp_path / "store", tmp_path / "cache").exists(key)
    # It was killed midway: the bytes went to a temporary name, never renamed onto the key.
    left = [path.name for path in (tmp_path / "store").rglob("*") if path.is_file()]
    assert left and all(name.startswith(f".{key}.") for name in left)


def test_a_store_that_does_not_answer_is_one_line(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _s3_store(s3_server, tmp_path.name, tmp_path / "cache", monkeypatch)
    store.check()
    missing = open_store("s3://no-such-bucket/x", tmp_path / "cache")
    with pytest.raises(
        StoreError, match=r"^store s3://no-such-bucket/x: no bucket 'no-such-bucket' at http"
    ):
        missing.check()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    refused = open_store(store.location, tmp_path / "cache")
    with pytest.raises(StoreError, match=r"^store s3://trainflow/\S+: .*SignatureDoesNotMatch"):
        refused.check()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # nothing listens
    with pytest.raises(StoreError, match=r": cannot reach http://127.0.0.1:9$") as caught:
        open_store(store.location, tmp_path / "cache").check()
    assert "\n" not in str(caught.value)
