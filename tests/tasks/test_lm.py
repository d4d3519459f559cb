"""tasks/lm.py: windows come from the file, y is x shifted, draws are reproducible, and the
file stays memory-mapped (a 3 GiB file works without being read)."""

import math
import pickle
import tracemalloc

import numpy as np
import pytest
import torch

from tasks.errors import DataError
from tasks.lm import TokenStream, perplexity, scan_vocab_size, token_accuracy


def _gen(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


@pytest.fixture
def ramp_bin(tmp_path):
    """A .bin of uint16 tokens 0, 1, ..., 9999: a window's first token is its start."""
    path = tmp_path / "ramp.bin"
    np.arange(10_000, dtype=np.uint16).tofile(path)
    return str(path)


def test_bin_windows_are_file_windows_inside_their_part(ramp_bin):
    ts = TokenStream(ramp_bin, context_length=16, train_fraction=0.9, val_windows=8)
    assert ts.vocab_size == 10_000 and ts.seq_len == 16 and ts.n_train == 9000
    for split, lo, hi in (("train", 0, 9000), ("val", 9000, 10_000)):
        x, y = ts.get_batch(split, 64, _gen(0), "cpu")
        assert x.shape == y.shape == (64, 16) and x.dtype == y.dtype == torch.long
        start = x[:, :1]  # (B, 1)
        assert torch.equal(x, start + torch.arange(16))  # consecutive file tokens
        assert torch.equal(y, x + 1)  # shifted by one
        assert (start >= lo).all() and (y[:, -1] < hi).all()  # never crosses the boundary


def test_same_generator_state_same_batch(ramp_bin):
    ts = TokenStream(ramp_bin, 8, 0.5, 4)
    a, b, c = (ts.get_batch("train", 32, _gen(s), None)[0] for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    g = _gen(1)
    first, second = ts.get_batch("train", 32, g)[0], ts.get_batch("train", 32, g)[0]
    assert torch.equal(first, a) and not torch.equal(first, second)  # the generator advances


def test_val_batches_are_fixed(ramp_bin):
    ts = TokenStream(ramp_bin, 16, 0.9, val_windows=10)
    runs = [list(ts.val_batches(batch_size=4)) for _ in range(2)]
    assert [b[0].shape[0] for b in runs[0]] == [4, 4, 2]
    for (x1, y1), (x2, y2) in zip(*runs):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    x = torch.cat([b[0] for b in runs[0]])
    assert len(set(x[:, 0].tolist())) == 10 and (x[:, 0] >= 9000).all()
    assert torch.equal(torch.cat([b[1] for b in runs[0]]), x + 1)


def test_val_windows_capped_at_distinct_starts(tmp_path):
    path = tmp_path / "short.txt"
    path.write_bytes(bytes(range(40)))
    ts = TokenStream(str(path), 8, 0.5, val_windows=100)
    assert len(ts.val_starts()) == 20 - 8 and len(set(ts.val_starts().tolist())) == 12


def test_bytes_file_matches_the_bytes(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    path = tmp_path / "corpus.txt"
    path.write_bytes(data)
    ts = TokenStream(str(path), 32, 0.8, 4)
    assert ts.vocab_size == 256
    x, y = ts.get_batch("train", 16, _gen(0))
    for row_x, row_y in zip(x.tolist(), y.tolist()):
        at = data.find(bytes(row_x))
        assert 0 <= at and at + 33 <= 4000  # found, and inside the training part
        assert bytes(row_y) == data[at + 1 : at + 33]


def test_file_is_memory_mapped_and_pickles_by_path(ramp_bin):
    ts = TokenStream(ramp_bin, 8, 0.5, 4)
    assert isinstance(ts.tokens, np.memmap) and not ts.tokens.flags.writeable
    blob = pickle.dumps(ts)
    assert len(blob) < 2_000  # the path, not 20 kB of tokens
    again = pickle.loads(blob)
    assert isinstance(again.tokens, np.memmap)
    assert torch.equal(again.get_batch("val", 4, _gen(3))[0], ts.get_batch("val", 4, _gen(3))[0])
    on_meta = ts.to("meta")
    assert on_meta.get_batch("train", 2, _gen(0))[0].device.type == "meta"
    assert ts.get_batch("train", 2, _gen(0))[0].device.type == "cpu"  # the original is unchanged
    assert isinstance(on_meta.tokens, np.memmap)


def test_huge_file_is_never_read(tmp_path):
    # A sparse 3 GiB file: opening it and drawing batches must not read (or allocate) it.
    # A marker at the validation boundary (an offset past 2**31) is the first val window.
    path = tmp_path / "huge.txt"
    size, boundary = 3 * 2**30, round(3 * 2**30 * 0.9)
    with open(path, "wb") as f:
        f.truncate(size)
        f.seek(boundary)
        f.write(b"grokking")
    tracemalloc.start()
    ts = TokenStream(str(path), 64, 0.9, 16)
    x, _ = ts.get_batch("train", 256, _gen(0))
    vx = [b[0] for b in ts.val_batches(16)]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 16 * 2**20, f"peak {peak} bytes: the file was read into memory"
    assert ts.n_train == boundary and x.shape == (256, 64) and len(vx) == 1
    assert bytes(vx[0][0, :8].tolist()) == b"grokking"


def test_vocab_scan_is_chunked_and_exact(tmp_path):
    tokens = np.zeros(5000, dtype=np.uint16)
    tokens[4999] = 1234  # the largest token in the last chunk
    path = tmp_path / "t.bin"
    tokens.tofile(path)
    assert scan_vocab_size(np.memmap(path, dtype=np.uint16, mode="r"), chunk=512) == 1235
    assert TokenStream(str(path), 4, 0.5, 2, scan_chunk=333).vocab_size == 1235


@pytest.mark.parametrize(
    "content, name, problem",
    [
        (None, "missing.bin", "not found"),
        (b"", "empty.txt", "empty"),
        (b"\x01\x02\x03", "odd.bin", "uint16"),
        (b"0123456789", "short.txt", "too short"),
    ],
)
def test_bad_files_raise_one_line_data_errors(tmp_path, content, name, problem):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError) as err:
        TokenStream(str(path), 8, 0.5, 4)
    msg = str(err.value)
    assert msg.startswith(str(path)) and problem in msg and "\n" not in msg
    assert isinstance(err.value, ValueError)


def test_directory_is_not_a_token_file(tmp_path):
    with pytest.raises(DataError, match="not a regular file"):
        TokenStream(str(tmp_path), 8, 0.5, 4)


def test_unknown_split(ramp_bin):
    with pytest.raises(ValueError, match="^split: got 'test'"):
        TokenStream(ramp_bin, 8, 0.5, 4).get_batch("test", 2, _gen(0))


def test_perplexity():
    assert perplexity(0.0) == 1.0
    assert perplexity(math.log(5.0)) == pytest.approx(5.0)
    assert perplexity(1e6) == math.inf
    assert math.isnan(perplexity(float("nan")))


def test_token_accuracy():
    logits = torch.zeros(2, 3, 4)  # (B, T, V)
    logits[0, :, 1] = 1.0  # row 0 predicts token 1 everywhere
    logits[1, :, 2] = 1.0  # row 1 predicts token 2
    y = torch.tensor([[1, 1, 0], [2, 3, 3]])  # 2 + 1 of 6 correct
    assert token_accuracy(logits, y) == pytest.approx(0.5)
    assert token_accuracy(logits.view(6, 4), y.view(6)) == pytest.approx(0.5)


def _rss_file_bytes() -> int:
    """This process's resident file-backed pages (Linux /proc), e.g. a touched memory map."""
    for line in open("/proc/self/status"):
        if line.startswith("RssFile:"):
            return int(line.split()[1]) * 1024
    pytest.skip("no RssFile in /proc/self/status")


def test_vocab_scan_leaves_the_file_out_of_resident_memory(tmp_path):
    # A regression: scanning through the map once faulted in every page and kept them mapped (RSS = file).
    path = tmp_path / "big.bin"
    tokens = (np.arange(32 * 2**20, dtype=np.uint32) % 60000).astype(np.uint16)  # 64 MiB, real pages
    tokens[-1] = 65000
    tokens.tofile(path)
    del tokens
    before = _rss_file_bytes()
    ts = TokenStream(str(path), 8, 0.5, 2, scan_chunk=1 << 16)
    grown = _rss_file_bytes() - before
    assert ts.vocab_size == 65001
    assert grown < 16 * 2**20, f"{grown / 2**20:.0f} MiB of the 64 MiB file stayed resident"
