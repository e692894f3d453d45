"""Active content in a PDF: what a viewer may run or open without being asked (JavaScript, launching a
program, submitting a form, opening an attached file …). One rule for both ends: verification lists it
in the report (the signatures' verdict does not change), sealing refuses it unless the caller asks for
it. It reads a document through `Objects`, so pyHanko's reader and verify/'s fast reader give the same
answer for the same document.

Where it looks (ISO 32000-2 §12.6, §7.11): the catalog's /OpenAction and /AA, the /JavaScript and
/EmbeddedFiles name trees, /AcroForm /XFA, every field's /A and /AA, every page's /AA, every
annotation's /A and /AA (and file attachment / rich media annotations), outline items' /A, associated
files (/AF), and each action's /Next chain. Actions run by themselves (/OpenAction, /AA) count unless
they only navigate (GoTo, Named); actions a click starts count when they run code, start or fetch
something (JavaScript, Launch, SubmitForm, ImportData, GoToE, GoToR, Rendition, RichMediaExecute) —
plain links (URI, GoTo) do not."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, Protocol

from pyhanko.pdf_utils import generic

NAVIGATION = frozenset({"GoTo", "Named"})
ACTIVE_ACTIONS = frozenset(
    {"JavaScript", "Launch", "SubmitForm", "ImportData", "GoToE", "GoToR", "Rendition", "RichMediaExecute"}
)
ACTIVE_ANNOTATIONS = {"FileAttachment": "file attachment", "RichMedia": "rich media"}
MAX_OBJECTS = 20_000  # objects looked at: a hostile document cannot make the scan unbounded
MAX_FINDINGS = 20


class Objects(Protocol):
    """A reader's object model, as the scan needs it (names without their slash)."""

    def get(self, mapping: Mapping[Any, Any], key: str) -> Any:
        """The raw (unresolved) value of /key, or None."""

    def resolve(self, value: Any) -> Any:
        """An indirect reference's object, else the value."""

    def identity(self, value: Any) -> Hashable | None:
        """An indirect reference's identity (to visit each object once), else None."""

    def mapping(self, value: Any) -> Mapping[Any, Any] | None:
        """A dictionary (a stream's dictionary too), else None."""


class _TooMany(Exception):
    pass


class _Scan:
    def __init__(self, objects: Objects) -> None:
        self.objects = objects
        self.found: dict[str, None] = {}
        self.seen: set[Hashable] = set()
        self.visits = 0

    def dictionary(self, raw: Any, once: bool = True) -> Mapping[Any, Any] | None:
        """The dictionary `raw` stands for; None if it is none, or (`once`) an object seen before."""
        self.visits += 1
        if self.visits > MAX_OBJECTS:
            raise _TooMany
        key = self.objects.identity(raw)
        if key is not None:
            if once and key in self.seen:
                return None
            self.seen.add(key)
        return self.objects.mapping(self.objects.resolve(raw))

    def value(self, mapping: Mapping[Any, Any], key: str) -> Any:
        return self.objects.resolve(self.objects.get(mapping, key))

    def items(self, raw: Any) -> list[Any]:
        value = self.objects.resolve(raw)
        return list(value) if isinstance(value, list) else [value] if value is not None else []

    def flag(self, what: str) -> None:
        self.found.setdefault(what)

    def action(self, raw: Any, where: str, automatic: bool) -> None:
        while raw is not None:
            action = self.dictionary(raw)
            if action is None:
                return
            kind = _name(self.value(action, "S"))
            if kind == "JavaScript" or self.objects.get(action, "JS") is not None:
                self.flag(f"{where} (JavaScript)")
            elif kind in ACTIVE_ACTIONS or (automatic and kind not in NAVIGATION):
                self.flag(f"{where} ({kind or 'action'})")
            following = self.items(self.objects.get(action, "Next"))
            for extra in following[1:]:
                self.action(extra, where, automatic)
            raw = following[0] if following else None

    def additional(self, raw: Any, where: str) -> None:
        triggers = self.dictionary(raw)
        if triggers is not None:
            for trigger in triggers:
                self.action(self.objects.get(triggers, _name(trigger) or ""), where, automatic=True)

    def catalog(self, catalog: Mapping[Any, Any]) -> None:
        opening = self.objects.get(catalog, "OpenAction")
        if self.objects.mapping(self.objects.resolve(opening)) is not None:  # (an array: a destination)
            self.action(opening, "/OpenAction", automatic=True)
        self.additional(self.objects.get(catalog, "AA"), "document /AA")
        names = self.dictionary(self.objects.get(catalog, "Names"))
        if names is not None:
            for tree, what in (("JavaScript", "/Names /JavaScript"), ("EmbeddedFiles", "/Names /EmbeddedFiles")):
                if self.objects.get(names, tree) is not None:
                    self.flag(what)
        if self.objects.get(catalog, "AF") is not None:
            self.flag("associated files (/AF)")
        form = self.dictionary(self.objects.get(catalog, "AcroForm"))
        if form is not None:
            if self.objects.get(form, "XFA") is not None:
                self.flag("/AcroForm /XFA")
            self.fields(self.objects.get(form, "Fields"))
        self.pages(self.objects.get(catalog, "Pages"))
        outlines = self.dictionary(self.objects.get(catalog, "Outlines"))
        if outlines is not None:
            self.outline(self.objects.get(outlines, "First"))

    def fields(self, raw: Any) -> None:
        stack = self.items(raw)
        while stack:
            field = self.dictionary(stack.pop())
            if field is None:
                continue
            self.action(self.objects.get(field, "A"), "field /A", automatic=False)
            self.additional(self.objects.get(field, "AA"), "field /AA")
            stack.extend(self.items(self.objects.get(field, "Kids")))

    def pages(self, raw: Any) -> None:
        number = 0
        stack = [raw]
        while stack:
            node = self.dictionary(stack.pop())
            if node is None:
                continue
            kids = self.objects.get(node, "Kids")
            if kids is not None:
                stack.extend(reversed(self.items(kids)))
                continue
            number += 1
            self.additional(self.objects.get(node, "AA"), f"page {number} /AA")
            if self.objects.get(node, "AF") is not None:
                self.flag("associated files (/AF)")
            for annotation_ref in self.items(self.objects.get(node, "Annots")):
                annotation = self.dictionary(annotation_ref)
                if annotation is None:
                    continue
                kind = _name(self.value(annotation, "Subtype"))
                if kind in ACTIVE_ANNOTATIONS:
                    self.flag(f"{ACTIVE_ANNOTATIONS[kind]} annotation on page {number}")
                self.action(self.objects.get(annotation, "A"), f"annotation /A on page {number}", automatic=False)
                self.additional(self.objects.get(annotation, "AA"), f"annotation /AA on page {number}")

    def outline(self, raw: Any) -> None:
        stack = [raw]
        while stack:
            item = self.dictionary(stack.pop())
            if item is None:
                continue
            self.action(self.objects.get(item, "A"), "outline item /A", automatic=False)
            stack.extend(x for x in (self.objects.get(item, "Next"), self.objects.get(item, "First")) if x)


def _name(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return value[1:] if value.startswith("/") else value


def find_active_content(catalog: Mapping[Any, Any], objects: Objects) -> list[str]:
    """What in the document (read from its catalog) a viewer may run or open by itself, in a few
    words each ("/OpenAction (JavaScript)", "page 2 /AA (Launch)", "/Names /EmbeddedFiles" …);
    empty for a plain document."""
    scan = _Scan(objects)
    try:
        scan.catalog(catalog)
    except _TooMany:
        scan.flag(f"not fully scanned: more than {MAX_OBJECTS} objects")
    found = list(scan.found)
    if len(found) > MAX_FINDINGS:
        found = [*found[:MAX_FINDINGS], f"… and {len(found) - MAX_FINDINGS} more"]
    return found


class PyHankoObjects:
    """`Objects` for pyHanko's reader (generic.DictionaryObject and friends)."""

    def get(self, mapping: Mapping[Any, Any], key: str) -> Any:
        slashed = "/" + key
        if slashed not in mapping:
            return None
        return mapping.raw_get(slashed) if isinstance(mapping, generic.DictionaryObject) else mapping[slashed]

    def resolve(self, value: Any) -> Any:
        return value.get_object() if isinstance(value, generic.IndirectObject) else value  # type: ignore[no-untyped-call]

    def identity(self, value: Any) -> Hashable | None:
        return (value.idnum, value.generation) if isinstance(value, generic.IndirectObject) else None

    def mapping(self, value: Any) -> Mapping[Any, Any] | None:
        return value if isinstance(value, generic.DictionaryObject) else None


PYHANKO = PyHankoObjects()
