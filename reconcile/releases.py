"""Every release the package registry lists for a counter's distribution, read once and committed
(reconcile/releases.json: when it was read, and per release its first upload time and file kinds), so
`reconcile atlas sweep --releases all` sweeps the same releases on every machine and every day.
`reconcile atlas releases --from-registry --out FILE` reads the registry again.

Order: the order released (each release's first file upload), not PEP 440's: thop's 0.0.4.post2006032126 (June
2020) came after 0.0.31.post2005241907 (May 2020), and "what changed since the previous release" means the one
before it in time.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

from .errors import UserError

LIST_PATH = Path(__file__).with_name("releases.json")
# The registry's JSON API (the one `pip` reads for the same project): releases -> files with packagetype,
# upload_time_iso_8601, yanked.
REGISTRY_URL = "https://pypi.org/pypi/{dist}/json"
REGISTRY_TIMEOUT_S = 60
# File kinds pip installs; a release with only eggs (thop 0.0.1, 0.0.2) cannot be installed by pip.
PIP_KINDS = ("bdist_wheel", "sdist")


@dataclass(frozen=True)
class Release:
    version: str  # PEP 440 normal form (thop's "0.0.31-2005241907" is 0.0.31.post2005241907)
    uploaded: str  # the release's first file upload, ISO 8601 UTC
    kinds: tuple[str, ...]  # its files' packagetypes, sorted
    yanked: bool  # every file yanked (pip still installs it when pinned with ==)

    def install_problem(self) -> str:
        """Why pip cannot install it, known from the listing alone ("" when it may)."""
        if not any(kind in PIP_KINDS for kind in self.kinds):
            return f"only {', '.join(self.kinds)} files on the registry; pip installs wheels and source distributions"
        return ""


def parse_registry_json(text: str) -> list[Release]:
    """The registry's JSON for one project -> its releases that have files, in the order released (first
    upload, then PEP 440 for releases uploaded the same second)."""
    from packaging.version import Version

    from .drift import normal_version, valid_version

    data = json.loads(text)
    out = []
    for version, files in (data.get("releases") or {}).items():
        if not files:
            continue  # a version with no files: nothing to install
        if not valid_version(version):
            continue  # pip cannot ask for it by == either
        normal = normal_version(version)
        out.append(Release(normal, min(f["upload_time_iso_8601"] for f in files),
                           tuple(sorted({f["packagetype"] for f in files})), all(f.get("yanked") for f in files)))
    return sorted(out, key=lambda r: (r.uploaded, Version(r.version)))


def dump(read_utc: str, by_dist: dict[str, list[Release]]) -> str:
    """The committed list's text (deterministic: distributions sorted, releases in the order released)."""
    lines = ["{", f' "read_utc": {json.dumps(read_utc)},', f' "source": {json.dumps(REGISTRY_URL)},',
             ' "distributions": {']
    dists = sorted(by_dist.items())
    for i, (dist, releases) in enumerate(dists):
        rows = [json.dumps({"version": r.version, "uploaded": r.uploaded, "kinds": list(r.kinds),
                            **({"yanked": True} if r.yanked else {})}) for r in releases]
        lines.append(f"  {json.dumps(dist)}: [\n   " + ",\n   ".join(rows) + "\n  ]" + ("," if i < len(dists) - 1 else ""))
    return "\n".join(lines + [" }", "}"]) + "\n"


@dataclass(frozen=True)
class Listing:
    read_utc: str
    by_dist: dict[str, list[Release]]

    def releases(self, dist: str) -> list[Release]:
        return self.by_dist.get(dist.lower(), [])

    def find(self, dist: str, version: str) -> Optional[Release]:
        return next((r for r in self.releases(dist) if r.version == version), None)


def load(path: Path = LIST_PATH) -> Listing:
    data = json.loads(Path(path).read_text())
    return Listing(data["read_utc"], {dist: [Release(r["version"], r["uploaded"], tuple(r["kinds"]),
                                                     bool(r.get("yanked"))) for r in rows]
                                      for dist, rows in data["distributions"].items()})


def read_registry(dists: Iterable[str], opener: Optional[Callable] = None) -> dict[str, list[Release]]:
    """Each distribution's releases, from the registry's JSON (one request each)."""
    import urllib.error
    import urllib.request

    opener = opener or urllib.request.urlopen
    out = {}
    for dist in dists:
        url = REGISTRY_URL.format(dist=dist)
        try:
            with opener(url, timeout=REGISTRY_TIMEOUT_S) as response:
                out[dist] = parse_registry_json(response.read().decode())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise UserError(f"could not read {url}: {getattr(exc, 'reason', exc)}") from None
    return out


def release_rank(listing: Listing, dist: Optional[str]) -> dict[str, int]:
    """version -> its place in the order released, for the distribution's listed releases."""
    return {r.version: i for i, r in enumerate(listing.releases(dist))} if dist else {}
