"""The public API is typed and documented: every public function, method and property
of the package and its modules has a docstring and annotations (parameters and return),
the annotations resolve, the package says so (py.typed), and help() shows them."""

import inspect
import os
import pydoc
import typing

from conftest import BINDINGS

import mosaic
from mosaic import export, forecast, losses, metrics, scene, sits, weights

MODULES = {"mosaic": mosaic, "mosaic.losses": losses, "mosaic.metrics": metrics,
           "mosaic.scene": scene, "mosaic.sits": sits, "mosaic.forecast": forecast,
           "mosaic.weights": weights, "mosaic.export": export}
DUNDERS = ("__init__", "__getitem__", "__iter__", "__len__")


def ours(obj):
    mod = getattr(obj, "__module__", "") or ""
    return mod.split(".")[0] == "mosaic" and mod != "mosaic._ffi"  # (_ffi: generated)


def public_callables():
    """(qualified name, function or property getter) of the whole public API."""
    seen = set()
    for modname, mod in MODULES.items():
        names = getattr(mod, "__all__", None) or [n for n in dir(mod) if not n.startswith("_")]
        for n in names:
            obj = getattr(mod, n)
            if inspect.isclass(obj) and ours(obj) and not issubclass(obj, BaseException):
                for mn in dir(obj):
                    if mn.startswith("_") and mn not in DUNDERS:
                        continue
                    raw = inspect.getattr_static(obj, mn)
                    if isinstance(raw, property):
                        f = raw.fget
                    elif isinstance(raw, (classmethod, staticmethod)):
                        f = raw.__func__
                    else:
                        f = raw
                    if inspect.isfunction(f) and ours(f) and f not in seen:
                        seen.add(f)
                        yield "%s.%s.%s" % (modname, obj.__name__, mn), f, isinstance(raw, property)
            elif inspect.isfunction(obj) and ours(obj) and obj not in seen:
                seen.add(obj)
                yield "%s.%s" % (modname, n), obj, False


def test_api_is_annotated_and_documented():
    missing = []
    items = list(public_callables())
    assert len(items) > 100  # (the whole API was found)
    ns = dict(vars(mosaic))
    for qual, f, is_prop in items:
        if not inspect.getdoc(f):
            missing.append(qual + ": no docstring")
        sig = inspect.signature(f)
        for name, p in sig.parameters.items():
            if name not in ("self", "cls") and p.annotation is inspect.Parameter.empty:
                missing.append("%s: parameter %s has no annotation" % (qual, name))
        if sig.return_annotation is inspect.Signature.empty and not qual.endswith("__init__"):
            missing.append(qual + ": no return annotation")
        typing.get_type_hints(f, localns=ns)  # every annotation resolves
    assert not missing, "\n".join(missing)


def test_py_typed_marker():
    assert os.path.isfile(os.path.join(BINDINGS, "mosaic", "py.typed"))


def test_help_shows_signatures_and_docs():
    text = pydoc.render_doc(mosaic.Dataset, renderer=pydoc.plaintext)
    assert "Sample i as a dict" in text  # __getitem__'s docstring
    assert "fill_batch(self, indices:" in text and "-> 'Batch'" in text
    text = pydoc.render_doc(mosaic.Model.embed, renderer=pydoc.plaintext)
    assert "kind: Union[str, int] = 'fused'" in text
