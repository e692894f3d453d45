"""What an OFD reader shows, as package entries (GB/T 33190 §7): the files a signature must cover.

Rendered: the document root (Document.xml), its pages and template pages, the resource files named by the
document (PublicRes, DocumentRes) and by pages (PageRes), the fonts, images and other media and colour
profiles those name, the annotation list and every annotation file, and the files of document versions.
Not rendered: OFD.xml's metadata (everything it selects is followed here and must be covered in turn),
attachments, custom tags, extensions and anything no structure names. The signatures' own files are the
signatures' business (each is bound by its own signature).

References are followed by exact entry name (ofd_package). A name that is missing exactly but that a
lenient reader would find is followed to that entry too: such a reader shows it, so it must be covered.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from verify.ofd_names import location_path
from verify.ofd_package import OfdFormatError, Package, children, find, local

MAX_STRUCTURE_BYTES = 32 * 1024 * 1024  # XML parsed to find what is rendered, per package
MAX_RENDERED = 20_000


@dataclass
class Layout:
    """The entries a reader renders for one DocBody (entry name → why it is rendered)."""

    rendered: dict[str, str] = field(default_factory=dict)
    absent: list[str] = field(default_factory=list)  # named by the structure, not in the package
    problems: list[str] = field(default_factory=list)  # structure that could not be followed


@dataclass
class Budget:
    """Structure bytes parsed so far for one package (all its DocBodies share it)."""

    parsed: int = 0


class _Walk:
    def __init__(self, package: Package, budget: Budget) -> None:
        self.package = package
        self.layout = Layout()
        self.budget = budget

    def locate(self, location: str | None, base_dir: str, why: str) -> str | None:
        """The entry a location names, recorded as rendered; None (recorded as absent) if there is none."""
        if not location or not location.strip():
            return None
        try:
            path = location_path(location, base_dir)
        except OfdFormatError as exc:
            self.layout.absent.append(f"{why}: {exc}")
            return None
        if not self.package.has(path):
            alias = self.package.lenient(path)
            if alias is None:
                self.layout.absent.append(f"{path} ({why})")
                return None
            why, path = f"{why}, named {path!r}: a lenient reader finds this entry", alias
        if path not in self.layout.rendered:
            if len(self.layout.rendered) >= MAX_RENDERED:
                raise OfdFormatError(f"more than {MAX_RENDERED} rendered files")
            self.layout.rendered[path] = why
        return path

    def xml(self, path: str) -> Element | None:
        size = self.package.names[path].file_size
        self.budget.parsed += size
        if self.budget.parsed > MAX_STRUCTURE_BYTES:
            raise OfdFormatError(f"more than {MAX_STRUCTURE_BYTES} bytes of structure to follow")
        try:
            return self.package.xml(path)
        except OfdFormatError as exc:
            self.layout.problems.append(str(exc))
            return None

    def resources(self, location: str | None, base_dir: str, why: str) -> None:
        path = self.locate(location, base_dir, why)
        res = self.xml(path) if path is not None else None
        if path is None or res is None:
            return
        try:  # the folder of its files (GB/T 33190 §7.9: Res/@BaseLoc)
            res_dir = location_path(res.get("BaseLoc") or ".", posixpath.dirname(path))
        except OfdFormatError as exc:
            self.layout.problems.append(f"{path}: {exc}")
            return
        for element in res.iter():
            name = local(element.tag)
            if name in ("FontFile", "MediaFile"):
                self.locate(element.text, res_dir, f"{name} of {path}")
            elif name == "ColorSpace" and element.get("Profile"):
                self.locate(element.get("Profile"), res_dir, f"colour profile of {path}")

    def page(self, location: str | None, base_dir: str, why: str) -> None:
        path = self.locate(location, base_dir, why)
        page = self.xml(path) if path is not None else None
        if path is None or page is None:
            return
        for res in children(page, "PageRes"):
            self.resources(res.text, posixpath.dirname(path), f"PageRes of {path}")

    def document(self, location: str, base_dir: str) -> None:
        path = self.locate(location, base_dir, "DocRoot")
        document = self.xml(path) if path is not None else None
        if path is None or document is None:
            return
        doc_dir = posixpath.dirname(path)
        common = find(document, "CommonData")
        for element in common if common is not None else []:
            if local(element.tag) in ("PublicRes", "DocumentRes"):
                self.resources(element.text, doc_dir, f"{local(element.tag)} of {path}")
            elif local(element.tag) == "TemplatePage":
                self.page(element.get("BaseLoc"), doc_dir, f"template page of {path}")
        pages = find(document, "Pages")
        for number, page in enumerate(children(pages, "Page") if pages is not None else [], 1):
            self.page(page.get("BaseLoc"), doc_dir, f"page {number} of {path}")
        for annotations_el in children(document, "Annotations"):
            listing_path = self.locate(annotations_el.text, doc_dir, f"annotation list of {path}")
            listing = self.xml(listing_path) if listing_path is not None else None
            if listing_path is None or listing is None:
                continue
            for page_el in children(listing, "Page"):
                file_el = find(page_el, "FileLoc")
                if file_el is not None:
                    self.locate(file_el.text, posixpath.dirname(listing_path), f"annotations in {listing_path}")

    def versions(self, body: Element) -> None:
        versions = find(body, "Versions")
        for version in children(versions, "Version") if versions is not None else []:
            path = self.locate(version.get("BaseLoc"), "", "document version")
            described = self.xml(path) if path is not None else None
            if path is None or described is None:
                continue
            file_list = find(described, "FileList")
            for file_el in children(file_list, "File") if file_list is not None else []:
                self.locate(file_el.text, posixpath.dirname(path), f"file of version {path}")
            root_el = find(described, "DocRoot")
            if root_el is not None and root_el.text:
                self.document(root_el.text, posixpath.dirname(path))


def rendered_files(package: Package, body: Element, budget: Budget) -> Layout:
    """The files a reader renders for one DocBody of OFD.xml."""
    walk = _Walk(package, budget)
    root_el = find(body, "DocRoot")
    if root_el is None or not (root_el.text or "").strip():
        walk.layout.problems.append("a DocBody of OFD.xml has no DocRoot")
    else:
        walk.document(root_el.text or "", "")
    walk.versions(body)
    return walk.layout
