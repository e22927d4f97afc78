"""Product images from anywhere (a URL, a local path, or bytes), fetched once and kept on disk by content hash.

A URL is fetched with a timeout, a size limit and a check that what came back is an image (by its content type and
by decoding it); the bytes go to ``<cache_dir>/images/`` under their sha256, so two products that share a packshot
share one file, one visual description and one cache entry. What a source gave is recorded in the store: a missing
image (offline, 404, not an image, too big) is a fact about that product, reported in the results, and not fetched
again unless asked; it never stops a run.
"""

import hashlib
import io
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image as PILImage
from PIL import UnidentifiedImageError
from sqlalchemy import select

from rae.store.schema import ImageRow
from rae.store.store import Store

ALLOWED = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}
PIL_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 10 * 1024 * 1024
    timeout_s: float = 10.0


@dataclass(frozen=True)
class FetchedImage:
    """An image on disk (``ok``), or why there is none (``missing``)."""

    source: str
    status: str
    content_hash: str | None = None
    media_type: str | None = None
    path: Path | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def data_uri(self) -> str:
        import base64

        return f"data:{self.media_type};base64,{base64.b64encode(self.path.read_bytes()).decode()}"


class ImageCache:
    def __init__(self, store: Store, cache_dir: Path | str, limits: ImageLimits = ImageLimits(), refetch_missing: bool = False):
        self.store = store
        self.directory = Path(cache_dir) / "images"
        self.limits = limits
        self.refetch_missing = refetch_missing

    def image(self, source: str | bytes | None) -> FetchedImage:
        """The image of a catalog entry (URL or path), or given as bytes; fetched at most once per source."""
        if source is None or source == "" or source == b"":
            return FetchedImage(source="", status="missing", reason="the product has no image")
        if isinstance(source, bytes):
            return self._keep("bytes", source, declared_type=None)
        known = self._recorded(source)
        if known is not None and (known.ok or not self.refetch_missing):
            return known
        if source.startswith(("http://", "https://")):
            return self._download(source)
        return self._read_file(source)

    def _recorded(self, source: str) -> FetchedImage | None:
        with self.store.session() as session:
            row = session.get(ImageRow, source)
        if row is None:
            return None
        if row.status != "ok":
            return FetchedImage(source, "missing", reason=row.reason)
        path = self._path(row.content_hash, row.media_type)
        if not path.exists():  # the cache directory was cleared: fetch again
            return None
        return FetchedImage(source, "ok", row.content_hash, row.media_type, path)

    def _download(self, url: str) -> FetchedImage:
        try:
            with httpx.stream("GET", url, timeout=self.limits.timeout_s, follow_redirects=True) as response:
                if response.status_code != 200:
                    return self._missing(url, f"HTTP {response.status_code}")
                declared = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if declared and not declared.startswith("image/"):
                    return self._missing(url, f"not an image (content type {declared})")
                data = bytearray()
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > self.limits.max_bytes:
                        return self._missing(url, f"larger than {self.limits.max_bytes} bytes")
        except httpx.HTTPError as exc:
            return self._missing(url, f"cannot fetch ({type(exc).__name__}: {exc})"[:300])
        return self._keep(url, bytes(data), declared or None)

    def _read_file(self, path: str) -> FetchedImage:
        file = Path(path).expanduser()
        if not file.is_file():
            return self._missing(path, "no such file")
        if file.stat().st_size > self.limits.max_bytes:
            return self._missing(path, f"larger than {self.limits.max_bytes} bytes")
        return self._keep(path, file.read_bytes(), None)

    def _keep(self, source: str, data: bytes, declared_type: str | None) -> FetchedImage:
        media_type = _sniff(data)
        if media_type is None:
            return self._missing(source, "not a readable PNG, JPEG, GIF or WebP image")
        content_hash = hashlib.sha256(data).hexdigest()
        path = self._path(content_hash, media_type)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written under a name of this writer's own, then renamed (atomic): a half-written file is never taken
            # for an image, and two workers keeping the same image at once do not trip over each other.
            temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
            temporary.write_bytes(data)
            temporary.replace(path)
        if source != "bytes":
            self._record(ImageRow(source=source, status="ok", content_hash=content_hash, media_type=media_type, size=len(data)))
        return FetchedImage(source, "ok", content_hash, media_type, path)

    def _missing(self, source: str, reason: str) -> FetchedImage:
        if source != "bytes":
            self._record(ImageRow(source=source, status="missing", reason=reason))
        return FetchedImage(source, "missing", reason=reason)

    def _record(self, row: ImageRow) -> None:
        self.store.replace(row)

    def _path(self, content_hash: str, media_type: str) -> Path:
        return self.directory / content_hash[:2] / f"{content_hash}.{ALLOWED[media_type]}"


def _sniff(data: bytes) -> str | None:
    """The image type by decoding it, not by what a server or a file name claims."""
    try:
        with PILImage.open(io.BytesIO(data)) as image:
            image.verify()
            return PIL_FORMATS.get(image.format)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


def recorded_image(store: Store, source: str) -> ImageRow | None:
    """What fetching an image source gave, if it was fetched."""
    with store.session() as session:
        return session.get(ImageRow, source)


def image_with_hash(store: Store, content_hash: str) -> ImageRow | None:
    """A fetched image's record, by the hash of its bytes."""
    with store.session() as session:
        return session.scalars(select(ImageRow).where(ImageRow.content_hash == content_hash, ImageRow.status == "ok")).first()
