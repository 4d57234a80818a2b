import hashlib
import io
import socket
import tarfile
import time
import zipfile

import pytest

from cycle_pkg.data.archives import extract_archive
from cycle_pkg.data.download import download, parse_source
from cycle_pkg.errors import ConfigError, DatasetError

from ..helpers.http_server import serve
from ..helpers.rar4 import write_stored_rar

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def files(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    (root / "data.bin").write_bytes(PAYLOAD)
    return root


def fetch(url, dest, **kwargs):
    return download(url, dest, retries=kwargs.pop("retries", 3), backoff=0.01, timeout=5, progress=False, **kwargs)


def test_download_verifies_and_never_fetches_again(files, tmp_path):
    with serve(files) as server:
        url = f"{server.url}/data.bin#sha256={sha256(PAYLOAD)}"
        dest = fetch(url, tmp_path / "out" / "data.bin")
        assert dest.read_bytes() == PAYLOAD
        assert not (tmp_path / "out" / "data.bin.part").exists()
        fetch(url, dest)
        assert server.count("data.bin") == 1  # present and verified: no second request


def test_a_cut_transfer_resumes_with_a_range_request(files, tmp_path):
    with serve(files) as server:
        server.faults["data.bin"] = ["truncate", "503"]
        dest = fetch(f"{server.url}/data.bin#sha256={sha256(PAYLOAD)}", tmp_path / "data.bin")
        assert dest.read_bytes() == PAYLOAD
        ranges = [r for name, r in server.requests if name == "data.bin"]
        assert ranges[0] is None and ranges[1:] == [f"bytes={len(PAYLOAD) // 2}-"] * 2  # resumed, twice


def test_an_interrupted_download_left_on_disk_resumes_in_the_next_run(files, tmp_path):
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD[:1000])
    with serve(files) as server:
        fetch(f"{server.url}/data.bin", tmp_path / "data.bin")
        assert server.requests == [("data.bin", "bytes=1000-")]
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD


def test_a_server_ignoring_range_restarts_the_file(files, tmp_path):
    (tmp_path / "data.bin.part").write_bytes(b"x" * 5000)  # not even the right bytes
    with serve(files) as server:
        server.faults["data.bin"] = ["ignore-range"]
        fetch(f"{server.url}/data.bin#sha256={sha256(PAYLOAD)}", tmp_path / "data.bin")
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD


def test_wrong_checksum_names_the_file_and_what_to_do(files, tmp_path):
    with serve(files) as server:
        url = f"{server.url}/data.bin#sha256={'0' * 64}"
        with pytest.raises(
            DatasetError, match=r"data\.bin: sha256 checksum mismatch .*expected 0{64}.*deleted.*data\.x"
        ):
            fetch(url, tmp_path / "data.bin", setting="data.x")
    assert not (tmp_path / "data.bin").exists() and not (tmp_path / "data.bin.part").exists()


def test_a_present_file_with_a_wrong_checksum_is_an_error_not_a_download(tmp_path):
    (tmp_path / "data.bin").write_bytes(b"something else")
    with pytest.raises(DatasetError, match="checksum mismatch.*Delete it"):
        fetch(f"http://127.0.0.1:9/data.bin#md5={'a' * 32}", tmp_path / "data.bin")


def test_missing_file_on_the_server_fails_at_once(files, tmp_path):
    with serve(files) as server:
        with pytest.raises(DatasetError, match="HTTP 404.*data.y"):
            fetch(f"{server.url}/nothing.bin", tmp_path / "nothing.bin", setting="data.y")
        assert server.count("nothing.bin") == 1  # not retried


def test_unreachable_and_silent_servers_fail_clearly_and_quickly(tmp_path):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(DatasetError, match=r"could not download .* after 2 attempts"):
        fetch(f"http://127.0.0.1:{port}/a.zip", tmp_path / "a.zip", retries=2)
    silent = socket.socket()  # accepts connections, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    start = time.monotonic()
    with pytest.raises(DatasetError, match="after 2 attempts.*timed out"):
        download(f"http://127.0.0.1:{silent.getsockname()[1]}/b.zip", tmp_path / "b.zip", retries=2, timeout=0.5,
                 backoff=0.01, progress=False)  # fmt: skip
    assert time.monotonic() - start < 10
    silent.close()


def test_file_urls_and_paths(tmp_path):
    source = tmp_path / "src.bin"
    source.write_bytes(PAYLOAD)
    assert fetch(f"file://{source}#sha256={sha256(PAYLOAD)}", tmp_path / "a.bin").read_bytes() == PAYLOAD
    assert fetch(str(source), tmp_path / "b.bin").read_bytes() == PAYLOAD
    with pytest.raises(DatasetError, match="file not found"):
        fetch(str(tmp_path / "absent.bin"), tmp_path / "c.bin")


def test_source_syntax_errors_name_the_setting():
    assert parse_source("https://h/a.tar#md5=" + "A" * 32).checksum == "md5:" + "a" * 32
    with pytest.raises(ConfigError, match=r"data\.r2v2_archives\[0\].*sha256=<64 hex digits>"):
        parse_source("https://h/a.tar#sha256=abc", "data.r2v2_archives[0]")
    with pytest.raises(ConfigError, match="unsupported URL scheme 'ftp'"):
        download("ftp://h/a.tar", "/tmp/never-written", progress=False)


def make_tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_extracts_tar_zip_and_rar_by_content(tmp_path):
    members = {"top/a.txt": b"alpha", "top/sub/b.bin": PAYLOAD}
    (tmp_path / "x.tgz").write_bytes(make_tar(members))
    with zipfile.ZipFile(tmp_path / "x.zip", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    write_stored_rar(tmp_path / "x.rar", list(members.items()))
    (tmp_path / "x.rar").rename(tmp_path / "no-suffix")  # recognised by its bytes, not its name
    for archive in ("x.tgz", "x.zip", "no-suffix"):
        out = tmp_path / f"out-{archive}"
        assert extract_archive(tmp_path / archive, out, progress=False) == 2
        assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()} == members


def test_truncated_and_corrupt_archives_are_named(tmp_path):
    members = {"a.bin": PAYLOAD}
    data = make_tar(members)
    (tmp_path / "cut.tgz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"cut\.tgz: .*(truncated or corrupt|not a tar).*download it again"):
        extract_archive(tmp_path / "cut.tgz", tmp_path / "o1", progress=False)
    write_stored_rar(tmp_path / "a.rar", list(members.items()))
    rar = (tmp_path / "a.rar").read_bytes()
    (tmp_path / "cut.rar").write_bytes(rar[: len(rar) // 2])
    with pytest.raises(DatasetError, match=r"cut\.rar: truncated or corrupt rar archive"):
        extract_archive(tmp_path / "cut.rar", tmp_path / "o2", progress=False)
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as archive:
        archive.writestr("a.bin", PAYLOAD)
    raw = bytearray((tmp_path / "a.zip").read_bytes())
    raw[100] ^= 0xFF
    (tmp_path / "crc.zip").write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match=r"crc\.zip: truncated or corrupt zip archive"):
        extract_archive(tmp_path / "crc.zip", tmp_path / "o4", progress=False)


def test_members_escaping_the_target_are_refused(tmp_path):
    (tmp_path / "evil.tgz").write_bytes(make_tar({"../evil.txt": b"x"}))
    with pytest.raises(DatasetError, match="evil"):
        extract_archive(tmp_path / "evil.tgz", tmp_path / "out", progress=False)
    write_stored_rar(tmp_path / "evil.rar", [("../../evil.txt", b"x")])
    with pytest.raises(DatasetError, match="outside"):
        extract_archive(tmp_path / "evil.rar", tmp_path / "out", progress=False)
    assert not (tmp_path / "evil.txt").exists()
