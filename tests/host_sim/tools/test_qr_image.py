"""host_sim.tools.qr_image: render QR payloads to PNG and read them back with pyzbar and with OpenCV."""

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

np = pytest.importorskip("numpy")
cv2 = pytest.importorskip("cv2", reason="OpenCV not installed: pip install -r requirements-qr.txt")

from host_sim.paths import ROOT  # noqa: E402
from host_sim.tools import qr_image  # noqa: E402

needs_pyzbar = pytest.mark.skipif(
    "pyzbar" not in qr_image.available_backends(),
    reason="pyzbar/libzbar0 not installed: pip install -r requirements-qr.txt; apt-get install libzbar0",
)

CPM = "hQVDUFYwMWFfTwegAAAAAQEBVwgSNFZ4kBI0VtAiEiABAAAAAAAAAABfIAJOQQ=="  # base64, CPM-like
TICKET = "ZF1:T:2026-11-27:BUS-7:城关—石门村:单程:¥2.00"

# Payload texts a terminal may be shown: base64/base45-style ASCII, and UTF-8 with CJK; then any text
# but NUL (OpenCV's encoder takes a C string).
payloads = st.one_of(
    st.text(
        alphabet=st.sampled_from(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=:-._ $%*" + "智付票城关石门村单程"
        ),
        min_size=1,
        max_size=120,
    ),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=60),
)


@pytest.fixture
def pyzbar_missing(monkeypatch):
    """This process as if pyzbar (or libzbar0) were not installed, with the notice not yet shown."""
    monkeypatch.setitem(sys.modules, "pyzbar", None)
    monkeypatch.setitem(sys.modules, "pyzbar.pyzbar", None)
    monkeypatch.setattr(qr_image, "_pyzbar", qr_image._UNSET)
    monkeypatch.setattr(qr_image, "_notice_shown", False)


@needs_pyzbar
def test_round_trip_with_pyzbar(tmp_path):
    path = qr_image.make_image(CPM, tmp_path / "cpm.png")
    assert path == str(tmp_path / "cpm.png")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert qr_image.decode_image(path) == [CPM]
    assert qr_image.decode_image(path, backend="pyzbar") == [CPM]


def test_round_trip_with_opencv_forced(tmp_path, capsys):
    path = qr_image.make_image(TICKET, tmp_path / "ticket.png")
    assert qr_image.decode_image(path, backend="opencv") == [TICKET]
    assert capsys.readouterr().err == ""  # a chosen backend is not a fallback: no notice


@needs_pyzbar
def test_utf8_payload_with_pyzbar(tmp_path):
    path = qr_image.make_image(TICKET, tmp_path / "ticket.png", error_correction="H")
    assert qr_image.decode_image(path, backend="pyzbar") == [TICKET]


@pytest.mark.parametrize("backend", ["pyzbar", "opencv"])
def test_arrays_of_every_shape(backend):
    if backend not in qr_image.available_backends():
        pytest.skip("%s not available" % backend)
    gray = qr_image.render(CPM, scale=6)
    assert gray.dtype == np.uint8 and gray.ndim == 2
    bgr = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    bgra = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGRA)
    for image in (gray, bgr, bgra, gray[:, :, None], gray > 127, gray.astype(np.float64) / 255):
        assert qr_image.decode_image(image, backend=backend) == [CPM]


@pytest.mark.parametrize("backend", ["pyzbar", "opencv"])
def test_two_codes_in_one_picture(backend):
    if backend not in qr_image.available_backends():
        pytest.skip("%s not available" % backend)
    top = qr_image.render("FIRST-" + CPM[:20], scale=6)
    bottom = qr_image.render("SECOND-" + CPM[20:40], scale=6)
    width = max(top.shape[1], bottom.shape[1])
    pad = [np.pad(code, ((0, 0), (0, width - code.shape[1])), constant_values=255) for code in (top, bottom)]
    picture = np.vstack(pad)
    assert qr_image.decode_image(picture, backend=backend) == ["FIRST-" + CPM[:20], "SECOND-" + CPM[20:40]]


@pytest.mark.parametrize("backend", ["auto", "opencv"])
def test_no_code_gives_an_empty_list(backend):
    assert qr_image.decode_image(np.full((200, 200), 255, np.uint8), backend=backend) == []
    noise = np.random.default_rng(7).integers(0, 256, (200, 200), dtype=np.uint8)
    assert qr_image.decode_image(noise, backend=backend) == []


def test_fallback_notice_once(pyzbar_missing, tmp_path, capsys):
    path = qr_image.make_image(CPM, tmp_path / "cpm.png")
    assert qr_image.available_backends() == ["opencv"]
    assert qr_image.decode_image(path) == [CPM]
    assert qr_image.decode_image(path) == [CPM]
    err = capsys.readouterr().err
    assert err.count(qr_image.FALLBACK_NOTICE) == 1, err
    assert err == "pyzbar/libzbar0 not available; using OpenCV's QR detector\n"
    with pytest.raises(qr_image.QRImageError, match="libzbar0"):
        qr_image.decode_image(path, backend="pyzbar")


HIDE_PYZBAR = "sys.modules['pyzbar'] = None\n"  # as if pyzbar were not installed
HIDE_LIBZBAR = (  # pyzbar installed, the zbar shared library (Debian's libzbar0) not
    "import ctypes.util\n"
    "_find = ctypes.util.find_library\n"
    "ctypes.util.find_library = lambda name: None if name == 'zbar' else _find(name)\n"
)


@pytest.mark.parametrize("hide", [HIDE_PYZBAR, HIDE_LIBZBAR], ids=["no-pyzbar", "no-libzbar0"])
def test_fallback_notice_once_per_process(tmp_path, hide):
    """A whole process without pyzbar or libzbar: many decodes, one notice, on stderr only."""
    path = qr_image.make_image(CPM, tmp_path / "cpm.png")
    script = (
        "import sys\n" + hide + "from host_sim.tools import qr_image\n"
        "for _ in range(3):\n"
        "    print(qr_image.decode_image(sys.argv[1]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, path], check=False, capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ("[%r]\n" % CPM) * 3
    assert proc.stderr == qr_image.FALLBACK_NOTICE + "\n"


def test_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError):
        qr_image.decode_image(np.zeros((10, 10), np.uint8), backend="zxing")
    with pytest.raises(qr_image.QRImageError, match="no such image"):
        qr_image.decode_image(tmp_path / "missing.png")
    (tmp_path / "not-an-image.png").write_bytes(b"hello")
    with pytest.raises(qr_image.QRImageError, match="cannot read"):
        qr_image.decode_image(tmp_path / "not-an-image.png")
    with pytest.raises(ValueError):
        qr_image.render("x", error_correction="Z")
    with pytest.raises(qr_image.QRImageError):
        qr_image.render("x" * 8000)  # beyond a version-40 code
    with pytest.raises(qr_image.QRImageError, match="NUL"):
        qr_image.render("before\x00after")
    with pytest.raises(qr_image.QRImageError, match="surrogate"):
        qr_image.render("m\udd5b2")  # would crash OpenCV's encoder
    with pytest.raises(TypeError):
        qr_image.render(b"bytes")


@settings(max_examples=max(10, settings.default.max_examples // 8))
@given(text=payloads, level=st.sampled_from("LMQH"))
def test_any_payload_round_trips(text, level):
    picture = qr_image.render(text, scale=4, error_correction=level)
    for backend in qr_image.available_backends():
        assert qr_image.decode_image(picture, backend=backend) == [text], backend
