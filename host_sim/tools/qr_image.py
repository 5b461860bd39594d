"""QR codes as images on the host: render a payload to a PNG, read the payloads back from a picture.

    make_image("hQVDUFYwMQ...", "code.png")     -> "code.png"   (cv2.QRCodeEncoder)
    render("hQVDUFYwMQ...")                      -> the same picture as a numpy array
    decode_image("code.png")                     -> ["hQVDUFYwMQ..."]
    decode_image(ndarray)                        -> the same, from a grayscale / BGR / BGRA image array

Decoding uses zbar through pyzbar (the reader closest to a real 2D scanner engine: finds several codes,
tolerates blur and rotation).  pyzbar needs the system library (Debian: `apt-get install libzbar0`);
when pyzbar or libzbar is missing, OpenCV's cv2.QRCodeDetector (and QRCodeDetectorAruco) takes over
and a one-line notice goes to stderr, once per process.  backend="pyzbar" or "opencv" picks one
reader explicitly (no fallback, no notice).  OpenCV is needed in any case: it reads and writes the
image files and renders the codes.

Packages: requirements-qr.txt (pyzbar, opencv-python, numpy) and the Debian packages libzbar0 (zbar),
libgl1 and libglib2.0-0 (OpenCV's non-headless wheel links libGL).  CPython only, like all of host_sim/.
"""

import os
import sys

BACKENDS = ("auto", "pyzbar", "opencv")
FALLBACK_NOTICE = "pyzbar/libzbar0 not available; using OpenCV's QR detector"

_UNSET = object()
_pyzbar = _UNSET  # the pyzbar.pyzbar module, or None when it (or libzbar) cannot be loaded
_pyzbar_problem = ""
_notice_shown = False


class QRImageError(Exception):
    """No reader or writer is available, or the image cannot be read."""


# --- readers ----------------------------------------------------------------------------------------


def _load_pyzbar():
    """pyzbar.pyzbar, or None.  Importing it loads libzbar, so a missing libzbar0 shows up here."""
    global _pyzbar, _pyzbar_problem
    if _pyzbar is _UNSET:
        try:
            from pyzbar import pyzbar
        except (ImportError, OSError) as exc:  # no pyzbar, or "Unable to find zbar shared library"
            _pyzbar, _pyzbar_problem = None, "%s: %s" % (type(exc).__name__, exc)
        else:
            _pyzbar = pyzbar
    return _pyzbar


def _cv2():
    try:
        import cv2
    except ImportError as exc:
        raise QRImageError("OpenCV is not installed (pip install -r requirements-qr.txt): %s" % exc) from None
    return cv2


def _notice_fallback():
    global _notice_shown
    if not _notice_shown:
        _notice_shown = True
        print(FALLBACK_NOTICE, file=sys.stderr, flush=True)


def available_backends():
    """The readers that work here, best first: a subset of ("pyzbar", "opencv")."""
    found = []
    if _load_pyzbar() is not None:
        found.append("pyzbar")
    try:
        _cv2()
        found.append("opencv")
    except QRImageError:
        pass
    return found


def _as_gray(image):
    """A 2-D uint8 array from a path or an image array (gray, BGR or BGRA)."""
    import numpy as np

    if isinstance(image, (str, bytes, os.PathLike)):
        path = os.fsdecode(image)
        if not os.path.exists(path):
            raise QRImageError("no such image: %s" % path)
        cv2 = _cv2()
        pixels = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if pixels is None:
            raise QRImageError("cannot read image %s" % path)
        return pixels
    pixels = np.asarray(image)
    if pixels.ndim == 3:
        channels = pixels.shape[2]
        if channels == 1:
            pixels = pixels[:, :, 0]
        elif channels in (3, 4):
            # ITU-R 601 luma of BGR(A), the order cv2.imread returns.
            b, g, r = (pixels[:, :, i].astype(np.float32) for i in range(3))
            pixels = (0.114 * b + 0.587 * g + 0.299 * r).round()
        else:
            raise QRImageError("an image array has 1, 3 or 4 channels, not %d" % channels)
    elif pixels.ndim != 2:
        raise QRImageError("an image array is 2-D (gray) or 3-D (colour), not %d-D" % pixels.ndim)
    if pixels.dtype != np.uint8:
        if pixels.dtype == np.bool_:
            pixels = np.where(pixels, 255, 0)
        elif pixels.dtype.kind == "f" and pixels.max(initial=0) <= 1.0:
            pixels = pixels * 255.0
        pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(pixels)


def _text(data):
    """Payload bytes as text: UTF-8, else Latin-1 (byte for byte, so nothing is lost)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _decode_pyzbar(gray):
    """zbar through pyzbar's ctypes bindings, QR codes only, payload bytes as the code holds them.

    pyzbar.decode() leaves zbar's charset guessing on, which turns some UTF-8 payloads into
    mojibake (b"\xe4\xbb\x98A", "付A", is valid Shift-JIS, and comes back as "莉連").  zbar >= 0.23
    has a "binary" switch that hands back the bytes unconverted, so the scanner is set up here.
    """
    from ctypes import byref, c_int, c_void_p, cast, string_at

    from pyzbar import wrapper as zbar

    height, width = gray.shape
    pixels = gray.tobytes()
    scanner = zbar.zbar_image_scanner_create()
    if not scanner:
        raise QRImageError("zbar could not create an image scanner")
    found = []
    try:
        for symbology in zbar.ZBarSymbol:
            enable = 1 if symbology == zbar.ZBarSymbol.QRCODE else 0
            zbar.zbar_image_scanner_set_config(scanner, symbology, zbar.ZBarConfig.CFG_ENABLE, enable)
        symbology, config, value = c_int(), c_int(), c_int()
        if zbar.zbar_parse_config(b"qrcode.binary", byref(symbology), byref(config), byref(value)) == 0:
            zbar.zbar_image_scanner_set_config(scanner, symbology.value, config.value, value.value)
        image = zbar.zbar_image_create()
        if not image:
            raise QRImageError("zbar could not create an image")
        try:
            zbar.zbar_image_set_format(image, _fourcc("Y800"))
            zbar.zbar_image_set_size(image, width, height)
            zbar.zbar_image_set_data(image, cast(pixels, c_void_p), len(pixels), None)
            if zbar.zbar_scan_image(scanner, image) < 0:
                raise QRImageError("zbar rejected the image")
            symbol = zbar.zbar_image_first_symbol(image)
            while symbol:
                data = string_at(zbar.zbar_symbol_get_data(symbol), zbar.zbar_symbol_get_data_length(symbol))
                corners = range(zbar.zbar_symbol_get_loc_size(symbol))
                top = min((zbar.zbar_symbol_get_loc_y(symbol, i) for i in corners), default=0)
                left = min((zbar.zbar_symbol_get_loc_x(symbol, i) for i in corners), default=0)
                found.append((top, left, data))
                symbol = zbar.zbar_symbol_next(symbol)
        finally:
            zbar.zbar_image_destroy(image)
    finally:
        zbar.zbar_image_scanner_destroy(scanner)
    # zbar reports codes in no particular order: read them top to bottom, left to right.
    return [_text(data) for _, _, data in sorted(found)]


def _fourcc(code):
    return sum(ord(char) << (8 * i) for i, char in enumerate(code))


def _decode_opencv(gray):
    """OpenCV's readers: the classic QRCodeDetector and, where it misses (it does, on some codes the
    encoder itself made), the ArUco-based QRCodeDetectorAruco.  The reading with most codes wins."""
    cv2 = _cv2()
    detectors = [cv2.QRCodeDetector]
    if hasattr(cv2, "QRCodeDetectorAruco"):
        detectors.append(cv2.QRCodeDetectorAruco)
    best = []
    for make in detectors:
        detector = make()
        texts = []
        try:
            ok, decoded, points, _ = detector.detectAndDecodeMulti(gray)
        except cv2.error:
            ok, decoded, points = False, (), None
        if ok and decoded:
            order = range(len(decoded))
            if points is not None and len(points) == len(decoded):
                order = sorted(order, key=lambda i: (float(points[i][:, 1].min()), float(points[i][:, 0].min())))
            texts = [decoded[i] for i in order if decoded[i]]
        if not texts:
            try:
                text = detector.detectAndDecode(gray)[0]
            except cv2.error:
                text = ""
            texts = [text] if text else []
        if len(texts) > len(best):
            best = texts
    return best


def decode_image(image, backend="auto"):
    """Every QR payload in a picture (a path, or a numpy image array), as a list of str.

    backend "auto": pyzbar when it and libzbar load, else OpenCV with a once-per-process notice on
    stderr.  "pyzbar" or "opencv": that reader only.  A picture with no readable code gives [].
    """
    if backend not in BACKENDS:
        raise ValueError("backend is one of %s, not %r" % (", ".join(BACKENDS), backend))
    gray = _as_gray(image)
    if backend in ("auto", "pyzbar"):
        pyzbar = _load_pyzbar()
        if pyzbar is not None:
            return _decode_pyzbar(gray)
        if backend == "pyzbar":
            raise QRImageError(
                "pyzbar cannot be used (%s): pip install pyzbar and apt-get install libzbar0" % _pyzbar_problem
            )
        _notice_fallback()
    return _decode_opencv(gray)


# --- writer -----------------------------------------------------------------------------------------

_LEVELS = "LMQH"


def render(text, scale=8, border=4, error_correction="M"):
    """The QR code of `text` as a 2-D uint8 array (0 black, 255 white), `scale` pixels per module and
    at least `border` modules of white quiet zone around it."""
    import numpy as np

    if error_correction not in _LEVELS:
        raise ValueError("error_correction is one of L, M, Q, H")
    if scale < 1 or border < 0:
        raise ValueError("scale >= 1 and border >= 0")
    if not isinstance(text, str):
        raise TypeError("a QR payload is text (str), not %s" % type(text).__name__)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates: OpenCV 5.0's encoder crashes the process (SIGSEGV) on them.
        raise QRImageError("cannot render a payload that is not valid Unicode (lone surrogate)") from None
    if "\x00" in text:
        # OpenCV takes the text as a C string: it would silently end the payload at the NUL.
        raise QRImageError("cannot render a payload containing NUL (OpenCV's encoder would cut it there)")
    modules = _modules_opencv(text, error_correction)
    modules = np.pad(np.where(modules < 128, 0, 255).astype(np.uint8), border, constant_values=255)
    return modules.repeat(scale, axis=0).repeat(scale, axis=1)


def _modules_opencv(text, level):
    """One pixel per module from cv2.QRCodeEncoder (it adds its own narrow quiet zone)."""
    cv2 = _cv2()
    params = cv2.QRCodeEncoder.Params()
    params.correction_level = getattr(cv2, "QRCODE_ENCODER_CORRECT_LEVEL_" + level)
    try:
        matrix = cv2.QRCodeEncoder.create(params).encode(text)
    except cv2.error as exc:
        raise QRImageError("OpenCV cannot encode this payload (%d chars): %s" % (len(text), exc)) from None
    if matrix is None or matrix.size == 0:
        raise QRImageError("OpenCV cannot encode this payload (%d chars)" % len(text))
    return matrix


def make_image(text, path, scale=8, border=4, error_correction="M"):
    """Render `text` as a QR code PNG at `path`; returns the path."""
    pixels = render(text, scale=scale, border=border, error_correction=error_correction)
    path = os.fspath(path)
    if not _cv2().imwrite(path, pixels):
        raise QRImageError("cannot write %s" % path)
    return path
