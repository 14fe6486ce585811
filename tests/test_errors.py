"""Errors say what they are: the typed tree is used (a bad parameter is InvalidParameterError, a gallery
problem GalleryError, ...), and the bare base class is kept for almost nothing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from facedemo import errors
from facedemo.errors import DataUnavailableError, FaceDemoError, InvalidParameterError, UnknownModelError

PACKAGE = Path(__file__).resolve().parent.parent / "facedemo"


def raises() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and isinstance(node.exc.func, ast.Name):
                found.append((str(path.relative_to(PACKAGE)), node.lineno, node.exc.func.id))
    return found


def test_fewer_than_a_tenth_of_the_raises_use_the_bare_base_class():
    every = raises()
    bare = [(f, line) for f, line, name in every if name == "FaceDemoError"]
    assert len(every) > 200  # the scan sees the package
    assert len(bare) / len(every) < 0.10, bare


def test_every_error_class_is_a_facedemo_error_with_a_docstring():
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, Exception)]
    assert all(issubclass(c, FaceDemoError) and c.__doc__ for c in classes)
    used = {name for _, _, name in raises()}
    assert all(c.__name__ in used for c in classes if c is not FaceDemoError)  # none of them is dead


def test_real_calls_raise_the_specific_class(tmp_path):
    from facedemo.gallery.cluster import check_method
    from facedemo.models.registry import get_spec
    from facedemo.vision.degrade import parse_condition

    with pytest.raises(UnknownModelError, match="Unknown model 'nope'"):
        get_spec("nope")
    with pytest.raises(InvalidParameterError, match="Unknown condition 'fog'"):
        parse_condition("fog:3")
    with pytest.raises(InvalidParameterError, match="Unknown clustering method"):
        check_method("kmeans")
    from facedemo.evaluation.identification import probe_photos

    with pytest.raises(DataUnavailableError, match="does not exist"):
        probe_photos(tmp_path / "missing")
