"""A griffe extension that renders the package's reST docstring markup as Markdown for mkdocstrings.

The docstrings are written for Python's help() and Sphinx-style readers: ``:func:`name```,
``:class:`~a.b.C```, ```text <url>`__`` links. This turns roles into cross-references (links where
the target has an entry in the API reference, code otherwise) and reST links into Markdown links.
A role whose target does not exist in the package (or in the library it names) is a warning, which
the strict build turns into a failure: a renamed function leaves no stale reference behind.
"""
import importlib
import logging
import re
import sys
from typing import Any, Optional

from griffe import Extension, Object

_log = logging.getLogger("mkdocs.plugins.epsanet_docs")
_ROLE = re.compile(r":(?:py:)?(func|class|meth|mod|data|attr|exc|obj):`(~?)([^`<]+?)(?:\s*<([^`>]+)>)?`")
_LINK = re.compile(r"`([^`<]+?)\s*<(https?://[^`>]+)>`__?")


def _resolves(path: str) -> bool:
    """Whether ``path`` names something importable: a module, or an attribute chain below one."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        except Exception:  # a module that cannot be imported here (an optional dependency): not ours to judge
            return True
        try:
            for name in parts[i:]:
                obj = getattr(obj, name)
        except AttributeError:
            return False
        return True
    return False


def resolve(target: str, module: str, cls: Optional[str] = None) -> Optional[str]:
    """The full dotted path of a role's ``target`` as Sphinx would look it up from ``module``
    (and ``cls``, for methods and attributes), or None when nothing of that name exists."""
    target = target.lstrip(".")
    candidates = [f"{module}.{cls}.{target}"] if cls else []
    candidates += [f"{module}.{target}", target, f"epsanet.{target}"]
    package = module.rsplit(".", 1)[0]
    candidates.append(f"{package}.{target}")
    found = next((path for path in candidates if _resolves(path)), None)
    if found is None and "." not in target:  # a name the docstring's module does not import: look in the package
        found = next((f"{name}.{target}" for name, module in sorted(sys.modules.items())
                      if name.startswith("epsanet") and target in vars(module)), None)
    return found


class RstRoles(Extension):
    """Rewrites each object's docstring once, when griffe creates the object."""

    def on_instance(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is None:
            return
        module = obj.module.path
        cls = obj.parent.name if obj.parent is not None and obj.parent.is_class else (
            obj.name if obj.is_class else None)

        def role(match: re.Match) -> str:
            kind, short, text, explicit = match.groups()
            target = (explicit or text).strip()
            path = resolve(target.lstrip("~"), module, cls)
            if path is None:
                _log.warning("docstring of %s: :%s:`%s` names nothing that exists", obj.path, kind, target)
                return f"`{text.strip()}`"
            title = explicit and text.strip() or (path.rsplit(".", 1)[-1] if short else target.lstrip("~"))
            if kind in ("func", "meth"):
                title += "()"
            return f'<autoref identifier="{path}" optional><code>{title}</code></autoref>'

        text = _ROLE.sub(role, obj.docstring.value)
        obj.docstring.value = _LINK.sub(lambda m: f"[{m.group(1).strip()}]({m.group(2)})", text)
