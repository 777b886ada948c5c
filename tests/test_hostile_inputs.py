"""Hostile and broken input: nothing we read runs code, no secret is copied, no row is lost, and
every user mistake is one clear error (exit 2, no traceback, no file changed)."""

import http.server
import json
import os
import pickle
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner
from conftest import require, write_card, write_cifar10

from robustbench_snn.attacks import build_protocol
from robustbench_snn.cli import main
from robustbench_snn.data import load_dataset
from robustbench_snn.errors import CardError, CheckpointError, UserError
from robustbench_snn.registry import checkpoints, list_cards, load_model, read_card
from robustbench_snn.store import OFFICIAL_RESULTS_DIR, append_row, load_rows


class _CreatesFile:
    """A pickle payload that creates ``marker`` when unpickled (a stand-in for any code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


# Pickles -----------------------------------------------------------------------------------


def test_a_cifar_folder_holding_a_code_pickle_is_refused_and_runs_nothing(tmp_path):
    write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as handle:
        pickle.dump({"data": _CreatesFile(marker), "labels": [0]}, handle)
    with pytest.raises(UserError, match="not a CIFAR batch file"):
        load_dataset("cifar10", "test", tmp_path, download=False)
    assert not marker.exists()


@pytest.mark.parametrize("label", [99, -1])
def test_cifar_files_whose_labels_are_outside_the_classes_are_refused(tmp_path, label):
    batch = write_cifar10(tmp_path)
    batch["labels"][0] = label
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as handle:
        pickle.dump(batch, handle)
    with pytest.raises(UserError, match=f"label {label} is outside the 10 classes"):
        load_dataset("cifar10", "test", tmp_path, download=False)


def test_a_tiny_imagenet_text_file_in_latin_1_is_one_clear_data_error(tmp_path):
    root = tmp_path / "tiny-imagenet-200"
    (root / "val" / "images").mkdir(parents=True)
    (root / "wnids.txt").write_bytes("n01443537 caf\xe9\n".encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8 text"):
        load_dataset("tiny-imagenet", "test", tmp_path, download=False)


@pytest.mark.parametrize("what", ["fifo", "images only"])
def test_an_idx_folder_holding_the_split_in_part_is_an_error_not_a_silent_fall_back(tmp_path, what):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    shipped = Path(load_dataset.__globals__["EMBEDDED_DIR"]) / "fashion-mnist"
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes((shipped / "t10k-images-idx3-ubyte.gz").read_bytes())
    if what == "fifo":
        os.mkfifo(folder / "t10k-labels-idx1-ubyte")
    started = time.monotonic()
    with pytest.raises(UserError, match="in part"):
        load_dataset("fashion-mnist", "test", tmp_path, download=False)
    assert time.monotonic() - started < 5


def test_a_yaml_key_that_is_a_list_is_one_clear_error(tmp_path):
    path = tmp_path / "card.yaml"
    path.write_text("? [a, b]\n: 1\nname: x\n")
    with pytest.raises(CardError, match="a key must be a name, not a list"):
        read_card(path)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"overrides": [1, 2]}, "overrides must be a mapping"),
        ({"seed": 1.5}, "whole numbers"),
        ({"images": "meta"}, "meta device"),
    ],
)
def test_attack_arguments_of_the_wrong_kind_are_clear_errors(arguments, message):
    from robustbench_snn import attack

    images, labels = torch.rand(2, 1, 28, 28), torch.tensor([0, 1])
    if arguments.pop("images", None) == "meta":
        images = images.to("meta")
    with pytest.raises(UserError, match=message):
        attack(load_model("fmnist_ann"), images, labels, dataset="fashion-mnist", **arguments)


@pytest.mark.parametrize("suffix", [".pt", ".pth"])
def test_a_checkpoint_holding_a_code_pickle_is_refused_without_the_unsafe_advice(tmp_path, card_data, suffix):
    marker = tmp_path / "pwned"
    weights = tmp_path / f"evil{suffix}"
    torch.save({"backbone.0.weight": _CreatesFile(marker)}, weights)
    card_data["checkpoint"].update(path=weights.name, sha256=checkpoints.sha256_of(weights), size_bytes=weights.stat().st_size)
    with pytest.raises(CheckpointError) as refused:
        load_model(str(write_card(tmp_path, card_data)))
    assert not marker.exists()
    assert "weights_only=False" not in str(refused.value) and "may run code" in str(refused.value)


@pytest.mark.parametrize("what", ["folder", "fifo"])
def test_a_checkpoint_that_is_not_a_file_says_so(tmp_path, card_data, what):
    target = tmp_path / "weights.safetensors"
    target.unlink(missing_ok=True)
    if what == "folder":
        target.mkdir()
    else:
        os.mkfifo(target)
    card_data["checkpoint"]["path"] = target.name
    with pytest.raises(CheckpointError, match="not a regular file"):
        load_model(str(write_card(tmp_path, card_data)))


@pytest.mark.parametrize("bad", ["nan", "integer", "negative-variance", "counter-dtype"])
def test_weights_that_would_load_silently_wrong_are_refused(tmp_path, card_data, bad):
    from safetensors.torch import load_file, save_file

    weights = tmp_path / "tiny.safetensors"
    state = load_file(str(weights))
    if bad in ("nan", "integer"):
        key = next(name for name, tensor in state.items() if tensor.is_floating_point())
        state[key] = torch.full_like(state[key], float("nan")) if bad == "nan" else state[key].long()
    elif bad == "negative-variance":
        key = next(name for name in state if name.endswith("running_var"))
        state[key] = -state[key].abs() - 1
    else:
        key = next(name for name in state if name.endswith("num_batches_tracked"))
        state[key] = state[key].float()
    save_file(state, str(weights))
    card_data["checkpoint"].update(sha256=checkpoints.sha256_of(weights), size_bytes=weights.stat().st_size)
    with pytest.raises(CheckpointError, match="NaN|where the model has|negative variances"):
        load_model(str(write_card(tmp_path, card_data)))


def _idx(dimensions: list[int], body: bytes, magic: bytes = b"\0\0\x08") -> bytes:
    return magic + bytes([len(dimensions)]) + b"".join(size.to_bytes(4, "big") for size in dimensions) + body


@pytest.mark.parametrize(
    "images, labels, message",
    [
        (_idx([2, 28, 28], bytes(2 * 784), magic=b"\x1f\x8b\x08"), _idx([2], bytes(2)), "bad magic number"),
        (_idx([3, 28, 28], bytes(3 * 784)), _idx([2], bytes(2)), "3 images but"),
        (_idx([10**9, 28, 28], bytes(784)), _idx([2], bytes(2)), "more than any dataset"),
        (_idx([2, 28, 28], bytes(784)), _idx([2], bytes(2)), "the file holds 784"),
        (_idx([2, 28, 28], bytes(2 * 784)), _idx([2], bytes([0, 12])), "outside the 10 classes"),
        (_idx([2, 32, 32], bytes(2 * 1024)), _idx([2], bytes(2)), "not 28x28"),
        (b"\0\0", _idx([2], bytes(2)), "bad magic number"),
    ],
)
def test_malformed_idx_files_are_one_clear_data_error(tmp_path, images, labels, message):
    from robustbench_snn.data import load_dataset
    from robustbench_snn.errors import DataError

    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    (folder / "t10k-images-idx3-ubyte").write_bytes(images)
    (folder / "t10k-labels-idx1-ubyte").write_bytes(labels)
    with pytest.raises(DataError, match=message):
        load_dataset("fashion-mnist", "test", tmp_path)


def test_a_gzip_bomb_is_read_no_further_than_its_header_states(tmp_path):
    import gzip

    from robustbench_snn.data import load_dataset
    from robustbench_snn.errors import DataError

    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz", "wb") as bomb:
        bomb.write(_idx([2, 28, 28], bytes(2 * 784)))
        for _ in range(64):  # 1 GiB of zeros behind a header that states 1.5 KB
            bomb.write(bytes(1 << 24))
    (folder / "t10k-labels-idx1-ubyte").write_bytes(_idx([2], bytes(2)))
    started = time.monotonic()
    with pytest.raises(DataError, match="more than 1568"):
        load_dataset("fashion-mnist", "test", tmp_path)
    assert time.monotonic() - started < 30
    assert not list(tmp_path.rglob("*extracted*")), "nothing decompressed into a cache"
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz", "wb") as fine:
        fine.write(_idx([2, 28, 28], bytes(range(256)) * 6 + bytes(32)))
    images, labels = load_dataset("fashion-mnist", "test", tmp_path).tensors
    assert images.shape == (2, 1, 28, 28) and float(images.max()) == 1.0 and labels.tolist() == [0, 0]


# URLs, the download cache, timeouts ----------------------------------------------------------


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/w.pt", "data:,abc", "http://127.0.0.1/w.pt"])
def test_checkpoint_urls_other_than_https_are_refused_and_nothing_is_cached(tmp_path, card_data, url):
    card_data["checkpoint"].update(path=None, url=url)
    with pytest.raises(CheckpointError, match="only https"):
        load_model(str(write_card(tmp_path, card_data)))
    assert not list((Path(os.environ["XDG_CACHE_HOME"]) / "rsc-bench" / "checkpoints").glob("*"))


class _Server:
    """A loopback HTTP server whose answers a test sets; started and stopped by the test."""

    def __init__(self) -> None:
        self.body, self.delay, self.drip, self.redirect = b"", 0.0, False, None
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                time.sleep(server.delay)
                try:
                    if server.redirect:
                        self.send_response(302)
                        self.send_header("Location", server.redirect)
                        self.end_headers()
                        return
                    self.send_response(200)
                    self.send_header("Content-Length", str(10**9 if server.drip else len(server.body)))
                    self.end_headers()
                    while server.drip:  # one byte at a time, without end
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.05)
                    self.wfile.write(server.body)
                except OSError:  # the client gave up (the timeout tests)
                    pass

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.handle_error = lambda request, address: None
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/weights.safetensors"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch, tmp_path):
    monkeypatch.setattr(checkpoints, "ALLOWED_SCHEMES", ("https", "http"))  # loopback only, in tests
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "private-cache"))
    running = _Server()
    yield running
    running.close()


def _cache() -> Path:
    return Path(os.environ["XDG_CACHE_HOME"]) / "rsc-bench" / "checkpoints"


def test_a_download_is_verified_before_it_enters_the_private_cache(tmp_path, card_data, server):
    weights = (tmp_path / "tiny.safetensors").read_bytes()
    card_data["checkpoint"].update(path=None, url=server.url)
    card = write_card(tmp_path, card_data)
    server.body = b"<!doctype html><html>not weights</html>"
    with pytest.raises(CheckpointError, match="nothing was kept"):
        load_model(str(card))
    assert not list(_cache().glob("*"))  # no poisoned file, no partial file
    server.body = weights
    model = load_model(str(card))
    cached = next(_cache().glob("*.safetensors"))
    assert model.checkpoint_sha256 == card_data["checkpoint"]["sha256"]
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600 and stat.S_IMODE(_cache().stat().st_mode) == 0o700
    cached.write_bytes(b"tampered")  # a poisoned cache entry is detected and fetched again
    assert load_model(str(card)).checkpoint_sha256 == card_data["checkpoint"]["sha256"]


def test_a_server_that_never_answers_times_out_with_a_clear_error(tmp_path, card_data, server, monkeypatch):
    monkeypatch.setattr(checkpoints, "DOWNLOAD_TIMEOUT_S", 0.5)
    server.delay = 3.0
    card_data["checkpoint"].update(path=None, url=server.url)
    started = time.monotonic()
    with pytest.raises(CheckpointError, match="cannot download"):
        load_model(str(write_card(tmp_path, card_data)))
    assert time.monotonic() - started < 3.0
    assert not list(_cache().glob("*"))


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("DOWNLOAD_TOTAL_S", "not finished within"),  # the whole transfer's limit
        ("DOWNLOAD_RATE_WINDOW_S", "no real progress"),  # under a few kB/s over a window: stopped early
    ],
)
def test_a_server_that_drips_bytes_is_cut_off(tmp_path, card_data, server, monkeypatch, limit, message):
    monkeypatch.setattr(checkpoints, limit, 0.5)
    server.drip = True
    card_data["checkpoint"].update(path=None, url=server.url)
    started = time.monotonic()
    with pytest.raises(CheckpointError, match=message):
        load_model(str(write_card(tmp_path, card_data)))
    assert time.monotonic() - started < 10
    assert not list(_cache().glob("*"))
    server.drip = False


def test_redirects_may_not_leave_the_allowed_schemes_or_downgrade_https(tmp_path, card_data, server):
    assert not checkpoints.redirect_allowed("https://example.org/w", "http://example.org/w")
    assert checkpoints.redirect_allowed("https://example.org/w", "https://mirror.example.org/w")
    server.redirect = "ftp://example.org/weights.safetensors"
    card_data["checkpoint"].update(path=None, url=server.url)
    with pytest.raises(CheckpointError, match="redirects to"):
        load_model(str(write_card(tmp_path, card_data)))
    assert not list(_cache().glob("*"))


# YAML: bombs, depth, encoding, duplicates, out-of-range values --------------------------------


def _write(tmp_path: Path, text: str | bytes, name: str = "card.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b]\n", "aliases"),
        ("x: " + "[" * 5000 + "]" * 5000 + "\n", "nested"),
        (b"name: caf\xe9\n", "not UTF-8"),
        ("name: one\nname: two\n", "duplicate key"),
        ("name: !!python/object:os.system ls\n", "YAML"),
    ],
)
def test_bad_yaml_is_one_clear_error_for_cards_and_presets(tmp_path, text, message, monkeypatch):
    started = time.monotonic()
    with pytest.raises(CardError, match=message):
        read_card(_write(tmp_path, text))
    presets = tmp_path / "presets"
    presets.mkdir()
    _write(presets, text, "mine.yaml")
    with pytest.raises(UserError, match=message):
        build_protocol("mine", directory=presets)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda card: card.update(timesteps=True), "timesteps"),
        (lambda card: card.update(timesteps=10**9), "timesteps"),
        (
            lambda card: card.update(
                kind="snn",
                timesteps=4,
                encoding={"name": "rsc", "sigma": float("inf"), "variant": "I"},
                neuron={"tau": 2.0, "v_threshold": 1.0, "v_reset": 0.0, "surrogate": "atan", "surrogate_alpha": 2.0, "detach_reset": False},
            ),
            "encoding.sigma",
        ),
        (lambda card: card["checkpoint"].update(path="/etc/passwd"), "checkpoint"),
        (lambda card: card["checkpoint"].update(path="../../secret.safetensors"), "checkpoint"),
    ],
)
def test_out_of_range_card_values_are_refused(tmp_path, card_data, change, field):
    change(card_data)
    with pytest.raises(CardError, match=field.split(".")[0]):
        read_card(write_card(tmp_path, card_data))


@pytest.mark.parametrize("args", [{"channels": [1]}, {"hidden": -1}, {"num_classes": 5}])
def test_architecture_arguments_it_rejects_are_a_card_error(tmp_path, card_data, args):
    card_data["architecture"]["args"] = args
    with pytest.raises((CardError, CheckpointError)):
        load_model(str(write_card(tmp_path, card_data)))


def test_a_preset_with_no_members_or_an_official_name_cannot_pass_for_the_preset(tmp_path):
    presets = tmp_path / "presets"
    presets.mkdir()
    _write(presets, "name: pgd\nmembers: []\n", "empty.yaml")
    with pytest.raises(UserError, match="non-empty"):
        build_protocol("empty", directory=presets)


# Results files ---------------------------------------------------------------------------------


def _row(**fields):
    return {
        "model": "m",
        "dataset": "fashion-mnist",
        "protocol": "pgd",
        "seed": 0,
        "n_examples": 10,
        "timestamp": "t",
        "clean_accuracy": 0.5,
        "robust_accuracy": 0.25,
        "eps": 0.1,
        "flags": [],
        **fields,
    }


def test_a_row_after_a_truncated_line_is_kept(tmp_path):
    path = append_row(_row(model="first"), tmp_path)
    path.write_text(path.read_text()[:-20])  # a crash cut the last line
    append_row(_row(model="second"), tmp_path)
    assert list(load_rows("fashion-mnist", tmp_path)["model"]) == ["second"]


def test_broken_lines_are_skipped_with_a_warning_and_never_crash_a_reader(tmp_path, caplog):
    path = append_row(_row(model="good"), tmp_path)
    with open(path, "ab") as handle:
        handle.write(b"\xff\xfe not utf-8\n42\n[1, 2]\n")
        handle.write(json.dumps(_row(model="no-flags", flags="x")).encode() + b"\n")
        handle.write(json.dumps(_row(model="bad-eps", eps="big")).encode() + b"\n")
        handle.write(json.dumps(_row(model="too-good", robust_accuracy=1.7)).encode() + b"\n")
        handle.write(json.dumps({"model": "partial"}).encode() + b"\n")
    assert list(load_rows("fashion-mnist", tmp_path)["model"]) == ["good"]
    assert caplog.text.count("skipping a malformed row") == 7 and f"{path}:2" in caplog.text
    result = CliRunner().invoke(main, ["results", "--results-dir", str(tmp_path), "--all"])
    assert result.exit_code == 0 and "Traceback" not in result.output


@pytest.mark.parametrize(
    "environment, message",
    [
        ({"WORLD_SIZE": "abc"}, "not a whole number"),
        ({"WORLD_SIZE": "2"}, "MASTER_ADDR and MASTER_PORT are not set"),
        ({"WORLD_SIZE": "2", "RANK": "5", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}, "must be in"),
        ({"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "RSC_BENCH_JOIN_TIMEOUT": "2"}, "could not join the other ranks"),
    ],
)
def test_a_torchrun_environment_without_peers_or_malformed_fails_in_bounded_time(tmp_path, environment, message):
    if "RSC_BENCH_JOIN_TIMEOUT" in environment:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            environment = {**environment, "MASTER_PORT": str(probe.getsockname()[1])}
    command = [sys.executable, "-m", "robustbench_snn", "evaluate", "--model", "fmnist_ann", "--attack", "pgd", "-n", "8", "--no-store"]
    started = time.monotonic()
    result = subprocess.run(command, env={**os.environ, **environment}, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert time.monotonic() - started < 90


def test_a_sweep_too_large_or_too_many_workers_is_refused_before_any_work(tmp_path):
    grid = tmp_path / "big.yaml"
    grid.write_text(yaml.safe_dump({"dataset": "fashion-mnist", "models": "all", "eps": [0.1] * 400, "seeds": list(range(300))}))
    for arguments in (["--dry-run"], ["--workers", "100000"]):
        result = CliRunner().invoke(main, ["sweep", str(grid), *arguments, "--results-dir", str(tmp_path / "r")])
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert "at most 100000" in result.output or "1<=x<=4096" in result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("command", [["results", "--all"], ["plot-eps", "--out", "e.png"], ["leaderboard", "build", "--out", "site"]])
def test_a_deeply_nested_or_out_of_range_row_is_skipped_by_every_reader(tmp_path, caplog, command):
    path = append_row(_row(model="good"), tmp_path)
    with open(path, "ab") as handle:
        handle.write(b'{"model": "deep", "extra": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n")
        handle.write(json.dumps(_row(model="huge", n_examples=10**30)).encode() + b"\n")
        handle.write(json.dumps(_row(model="float", n_examples=1e30)).encode() + b"\n")
        handle.write(json.dumps(_row(model="seed", seed=-1)).encode() + b"\n")
        handle.write(json.dumps(_row(model="impossible", clean_accuracy=0.5, robust_accuracy=0.9)).encode() + b"\n")
    assert list(load_rows("fashion-mnist", tmp_path)["model"]) == ["good"]
    assert "nested deeper than" in caplog.text and "exceeds clean accuracy" in caplog.text
    arguments = [word if word not in ("e.png", "site") else str(tmp_path / word) for word in command]
    result = CliRunner().invoke(main, [*arguments, "--results-dir", str(tmp_path)])
    assert "Traceback" not in result.output and not isinstance(result.exception, RecursionError)
    assert result.exit_code in (0, 3), result.output
    append_row(_row(model="after"), tmp_path)  # the append survives the bad lines too
    assert list(load_rows("fashion-mnist", tmp_path)["model"]) == ["good", "after"]


# The command line: every user mistake is exit 2, no traceback, no file changed -----------------

BAD_INVOCATIONS = [
    ["evaluate", "--model", "no_such_model"],
    ["evaluate", "--model", "fmnist_ann", "--eps", "1e400"],
    ["evaluate", "--model", "fmnist_ann", "--eps", "abc"],
    ["evaluate", "--model", "fmnist_ann", "--attack", "no_such_attack"],
    ["evaluate", "--model", "fmnist_ann", "--attack", "pgd", "--steps", "1000000000"],
    ["evaluate", "--model", "fmnist_ann", "--attack", "pgd", "--eot", "1000000000"],
    ["evaluate", "--model", "fmnist_ann", "-n", "1000000000"],
    ["evaluate", "--model", "fmnist_ann", "--seed", str(2**70)],
    ["evaluate", "--model", "fmnist_ann", "--device", "foo"],
    ["evaluate", "--model", "fmnist_ann", "--device", "cuda:7"] if not torch.cuda.is_available() else ["models", "show", "x"],
    ["evaluate", "--model", "fmnist_ann", "--data-dir", "/nonexistent/data"],
    ["evaluate", "--model", "fmnist_ann", "--attack", "pgd", "--loss", "mse"],
    ["evaluate", "--model", "fmnist_ann", "--attack", "square", "--loss", "cw"],
    ["evaluate", "--model", "fmnist_ann", "--grad", "magic"],
    ["audit", "no_such_model"],
    ["audit", "fmnist_ann", "--attacks", "no_such_preset"],
    ["models", "show", "no_such_model"],
    ["certify", "--model", "fmnist_ann"],
    ["certify", "--model", "fmnist_snn_poisson", "--sigma", "0.1"],
    ["submit", "check", "/nonexistent/card.yaml"],
    ["evaluate", "--model", "fmnist_ann", "--results-dir", "/proc/version/results"],
    ["audit", "fmnist_ann", "--results-dir", "/proc/version/results"],
    ["certify", "--model", "fmnist_rsc1_s0.2", "--results-dir", "/proc/version/results"],
    ["train", "--dataset", "fashion-mnist", "--arch", "vgg11", "--kind", "ann", "--epochs", "1", "--out", "x/model"],
    ["train", "--dataset", "fashion-mnist", "--arch", "small_cnn", "--kind", "ann", "--out", "/proc/version/x/model"],
    ["leaderboard", "build", "--out", "site", "--results-dir", "/nonexistent/results"],
    ["leaderboard", "build", "--out", str(Path(__file__).resolve().parents[1] / "leaderboard")],
    ["plot-eps", "--out", "/proc/version/eps.png"],
    ["results", "--results-dir", "/nonexistent/results"],
    ["audit", "fmnist_ann", "--protocol", "none", "-n", "4"],
    ["evaluate", "--model", "fmnist_ann", "-n", "4", "--results-dir", ""],
    ["results", "--results-dir", " "],
    ["evaluate", "--model", "fmnist_ann", "-n", "4", "--data-dir", ""],
    ["certify", "--model", "fmnist_ann", "--sigma", "nan"],
    ["certify", "--model", "fmnist_ann", "--sigma", "inf"],
    ["evaluate", "--model", "fmnist_ann", "--smoothed", "--sigma", "nan"],
    ["evaluate", "--model", "fmnist_snn_poisson", "--attack", "pgd", "--estimator", "magic"],
    ["evaluate", "--model", "fmnist_snn_poisson", "--attack", "pgd", "--temperature", "0"],
    ["evaluate", "--model", "fmnist_snn_poisson", "--attack", "square", "--source", "expectation"],
]


@pytest.mark.parametrize("arguments", BAD_INVOCATIONS, ids=lambda arguments: " ".join(arguments)[:60])
def test_a_user_mistake_is_exit_2_with_an_error_and_no_traceback(arguments, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "Error" in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    assert not list(tmp_path.iterdir()) and not list(Path(os.environ["RSC_BENCH_RESULTS"]).glob("*.jsonl"))


def test_a_user_preset_named_like_an_official_one_is_stored_under_another_name(tmp_path, monkeypatch):
    from robustbench_snn import benchmark

    presets = tmp_path / "presets"
    presets.mkdir()
    _write(presets, "name: pgd\nattack: pgd\nsteps: 1\neps: 0.001\n", "pgd.yaml")
    monkeypatch.setenv("RSC_BENCH_ATTACKS", str(presets))
    record = benchmark(load_model("fmnist_ann"), attack="pgd", n_examples=8, batch_size=8, seed=0)
    assert record.protocol == "pgd-custom" and not record.preset_unmodified


def test_a_card_by_path_named_like_a_registered_model_stores_nothing_under_that_name(tmp_path, monkeypatch):
    shipped = Path(list_cards("fashion-mnist")[0]._path)
    copy = tmp_path / "mine.yaml"
    copy.write_text(shipped.read_text())
    (tmp_path / shipped.with_suffix(".safetensors").name).write_bytes(shipped.with_suffix(".safetensors").read_bytes())
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["evaluate", "--model", str(copy), "-n", "4", "--results-dir", str(tmp_path / "results")])
    assert result.exit_code == 2 and "a name of its own" in result.output
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("kind", ["fifo", "folder"])
@pytest.mark.parametrize("command", [["results"], ["evaluate", "--model", "fmnist_ann", "-n", "4"]])
def test_a_results_file_that_is_not_a_regular_file_is_refused_in_bounded_time(tmp_path, kind, command):
    store = tmp_path / "results"
    store.mkdir()
    target = store / "fashion-mnist.jsonl"
    os.mkfifo(target) if kind == "fifo" else target.mkdir()
    arguments = [sys.executable, "-m", "robustbench_snn", *command, "--results-dir", str(store)]
    result = subprocess.run(arguments, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2 and "not a regular file" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert sorted(path.name for path in store.iterdir()) == ["fashion-mnist.jsonl"]


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KB tmpfs, filled: every write on it fails with ENOSPC (needs root to mount)."""
    mount = tmp_path / "full"
    mount.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)]).returncode == 0
    require(mounted, "root, to mount a small tmpfs that fills up")
    try:
        filler = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(filler, bytes(4096)):
                pass
        except OSError:
            pass
        finally:
            os.close(filler)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)])


@pytest.mark.parametrize(
    "command",
    [
        ["plot-tradeoff", "--out", "{disk}/t.png", "--results-dir", "{official}"],
        ["leaderboard", "build", "--out", "{disk}/site", "--results-dir", "{official}"],
        ["evaluate", "--model", "fmnist_ann", "--attack", "pgd", "-n", "8", "--results-dir", "{disk}/r"],
    ],
)
def test_a_full_disk_is_one_line_and_leaves_nothing_half_written(full_disk, command):
    arguments = [word.format(disk=full_disk, official=OFFICIAL_RESULTS_DIR) for word in command]
    result = subprocess.run([sys.executable, "-m", "robustbench_snn", *arguments], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "no space left" in result.stderr and "Traceback" not in result.stderr, result.stderr
    left = {path.relative_to(full_disk).as_posix() for path in full_disk.rglob("*")} - {"filler"}
    assert not {name for name in left if name.endswith((".png", ".html")) or "site" in name}, left
    stored = full_disk / "r" / "fashion-mnist.jsonl"
    assert not stored.exists() or not stored.read_text().strip(), "no row stored, nor half a row"
