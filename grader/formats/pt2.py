"""``torch.export`` programs (``.pt2``): the static check that rebuilds an upload from its checked
members (in the parent, no torch), and the loader (in the model process)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from grader.errors import GradingError, safe_message
from grader.i18n import gettext_noop

if TYPE_CHECKING:
    from grader.formats import Predict
    from grader.kinds import TaskKind

# --- .pt2 ---------------------------------------------------------------------------------
#
# torch.export.load (2.14) runs code in several places an upload controls: a weight or constant
# whose config says ``use_pickle`` (``torch.load(weights_only=False)``), a constant that is a
# custom or opaque object (unpickled), a legacy ``data/weights/<model>.pt`` (retried without
# ``weights_only``), and every ``expr_str`` shape expression, which goes to ``sympy.sympify``,
# i.e. ``eval``. ``.module()`` then compiles the ``guards_code`` strings as Python whenever
# ``sample_inputs`` is present, and ``sample_inputs`` itself is unpickled with a fallback to
# ``weights_only=False``. A failed load is also retried in a pre-2.8 layout, whose files sit at
# the archive's root. So the archive is rebuilt from what this module has read and checked:
# only the members torch.export.save writes, each config and shape expression checked,
# ``guards_code`` emptied, and ``sample_inputs`` replaced by empty bytes, which the loader reads
# as "no example inputs" (guards are then not compiled either). The model process never sees
# the upload's own zip directory, so a zip that parses differently in miniz changes nothing.

MAX_JSON = 64 << 20

_PT2_MEMBERS = re.compile(
    r"archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id"
    r"|models/model\.json|data/sample_inputs/model\.pt"
    r"|data/weights/model_weights_config\.json|data/weights/weight_\d+"
    r"|data/constants/model_constants_config\.json|data/constants/tensor_\d+",
    re.ASCII,
)
_PAYLOAD_FILES = {
    "weights": re.compile(r"weight_\d+", re.ASCII),
    "constants": re.compile(r"tensor_\d+", re.ASCII),
}
_SYMBOL = re.compile(r"[a-z]{1,4}[0-9]{1,9}")
_TOKEN = re.compile(r"\s*(?:([0-9]{1,30})|([A-Za-z_]\w*)|'([^']*)'|(//|[-+*%(),=]))", re.ASCII)
#: sympy's spelling (srepr, as torch 2.14 writes it) of + * // %; ``Integer`` and ``Symbol``
_FUNCTIONS = {"Add", "Mul", "FloorDiv", "Mod", "PythonMod", "CleanDiv"}
_ASSUMPTIONS = {"positive", "integer", "nonnegative", "real", "finite"}
MAX_EXPRESSION = 4096
MAX_DEPTH = 64


def _pt2_error(code: str, message: str) -> GradingError:
    return GradingError(
        code,
        gettext_noop("%(problem)s; re-export the model with torch.export.save")
        % {"problem": message},
    )


class _Expression:
    """A recursive-descent check of one shape expression: symbols like ``s77``, integers and
    ``+ - * // % ( )``, written plainly or in sympy's ``Add(Symbol('s0', integer=True), ...)``
    form. Nothing is evaluated; anything else is refused."""

    def __init__(self, text: str) -> None:
        if len(text) > MAX_EXPRESSION:
            raise ValueError("too long")
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text.rstrip()):
            match = _TOKEN.match(text, pos)
            if not match:
                raise ValueError(f"unexpected {text[pos : pos + 10]!r}")
            kinds = ("int", "name", "str", "op")
            self.tokens += [
                (k, v) for k, v in zip(kinds, match.groups(), strict=True) if v is not None
            ]
            pos = match.end()
        self.pos = 0
        self.expr(0)
        if self.pos != len(self.tokens):
            raise ValueError("trailing input")

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")

    def take(self, kind: str, value: str | None = None) -> str:
        got = self.peek()
        if got[0] != kind or (value is not None and got[1] != value):
            raise ValueError(f"expected {value or kind}, got {got[1] or 'the end'}")
        self.pos += 1
        return got[1]

    def expr(self, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ValueError("nested too deeply")
        self.term(depth)
        while self.peek() in (("op", "+"), ("op", "-")):
            self.pos += 1
            self.term(depth)

    def term(self, depth: int) -> None:
        self.unary(depth)
        while self.peek() in (("op", "*"), ("op", "//"), ("op", "%")):
            self.pos += 1
            self.unary(depth)

    def unary(self, depth: int) -> None:
        if self.peek() == ("op", "-"):
            self.pos += 1
        self.atom(depth + 1)

    def atom(self, depth: int) -> None:
        kind, value = self.peek()
        if kind == "int":
            self.pos += 1
        elif kind == "op" and value == "(":
            self.pos += 1
            self.expr(depth)
            self.take("op", ")")
        elif kind == "name" and _SYMBOL.fullmatch(value):
            self.pos += 1
        elif kind == "name" and value == "Symbol":
            self.pos += 1
            self.take("op", "(")
            if not _SYMBOL.fullmatch(self.take("str")):
                raise ValueError("not a shape symbol")
            while self.peek() == ("op", ","):
                self.pos += 1
                if self.take("name") not in _ASSUMPTIONS:
                    raise ValueError("unknown assumption")
                self.take("op", "=")
                if self.take("name") not in ("True", "False"):
                    raise ValueError("not a boolean")
            self.take("op", ")")
        elif kind == "name" and value == "Integer":
            self.pos += 1
            self.take("op", "(")
            if self.peek() == ("op", "-"):
                self.pos += 1
            self.take("int")
            self.take("op", ")")
        elif kind == "name" and value in _FUNCTIONS:
            self.pos += 1
            self.take("op", "(")
            self.expr(depth)
            while self.peek() == ("op", ","):
                self.pos += 1
                self.expr(depth)
            self.take("op", ")")
        else:
            raise ValueError(f"{value or 'the end'} is not allowed")


def check_expression(text: object) -> None:
    """Raise ``GradingError`` unless ``text`` is a plain shape expression."""
    try:
        if not isinstance(text, str):
            raise ValueError("not a string")
        _Expression(text)
    except ValueError as exc:
        raise _pt2_error(
            "pt2_expression",
            gettext_noop(
                "your .pt2 holds a shape expression the grader does not accept (%(why)s):"
                " %(text)s; only symbols, integers and + - * // %% are allowed"
            )
            % {"why": exc, "text": repr(str(text)[:80])},
        ) from None


def _walk_expressions(node: object) -> None:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "expr_str":
                    check_expression(value)
                else:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


def _load_json(archive: zipfile.ZipFile, name: str) -> Any:
    if archive.getinfo(name).file_size > MAX_JSON:
        raise _pt2_error(
            "pt2_layout",
            gettext_noop("%(name)s is larger than %(size)s MB")
            % {"name": name, "size": MAX_JSON >> 20},
        )
    try:
        return json.loads(archive.read(name))
    except ValueError as exc:
        raise _pt2_error(
            "pt2_layout", gettext_noop("%(name)s is not valid JSON") % {"name": name}
        ) from exc


def _check_payload_config(config: Any, kind: str) -> None:
    entries = config.get("config") if isinstance(config, dict) else None
    if not isinstance(entries, dict):
        raise _pt2_error(
            "pt2_layout", gettext_noop("the %(kind)s config is malformed") % {"kind": kind}
        )
    for fqn, meta in entries.items():
        if not isinstance(meta, dict) or meta.get("use_pickle") is not False:
            raise _pt2_error(
                "pt2_pickle",
                gettext_noop(
                    "your .pt2 stores the %(kind)s entry %(name)s as a pickle (use_pickle),"
                    " which can run code when loaded"
                )
                % {"kind": kind, "name": repr(str(fqn)[:80])},
            )
        if not _PAYLOAD_FILES[kind].fullmatch(str(meta.get("path_name"))):
            raise _pt2_error(
                "pt2_constant",
                gettext_noop("your .pt2 holds a %(kind)s entry %(name)s that is not a plain tensor")
                % {"kind": kind, "name": repr(str(fqn)[:80])},
            )


def _check_model(document: Any) -> bytes:
    if not isinstance(document, dict):
        raise _pt2_error("pt2_layout", gettext_noop("models/model.json is malformed"))
    constraints = document.get("range_constraints", {})
    if not isinstance(constraints, dict):
        raise _pt2_error("pt2_layout", gettext_noop("range_constraints is malformed"))
    for name, bounds in constraints.items():
        values = bounds.values() if isinstance(bounds, dict) else [bounds]
        if not _SYMBOL.fullmatch(name) or not all(v is None or type(v) is int for v in values):
            raise _pt2_error(
                "pt2_expression",
                gettext_noop("your .pt2 holds a malformed range for %(name)s")
                % {"name": repr(name[:40])},
            )
    _walk_expressions(document)
    document["guards_code"] = []  # Python source that .module() would compile
    return json.dumps(document).encode()


def sanitize_pt2(path: Path) -> bytes:
    """Check a ``torch.export`` archive and rebuild it from its checked members."""
    checked: dict[str, bytes] = {}
    with zipfile.ZipFile(path) as archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        prefixes = {i.filename.split("/", 1)[0] for i in infos}
        if len(prefixes) != 1:
            raise _pt2_error(
                "pt2_layout", gettext_noop("your .pt2 holds files outside its one top folder")
            )
        prefix = prefixes.pop() + "/"
        # The JSON first: a payload is then refused for what its config claims it is.
        for info in sorted(infos, key=lambda i: not i.filename.endswith(".json")):
            member = info.filename[len(prefix) :]
            if info.compress_type != zipfile.ZIP_STORED:
                # torch.export.save stores every member; refusing compression keeps the rebuilt
                # archive (held in memory) no larger than the upload.
                raise _pt2_error(
                    "pt2_layout", gettext_noop("your .pt2 was compressed again after saving")
                )
            if not _PT2_MEMBERS.fullmatch(member):
                raise _pt2_error(
                    "pt2_member",
                    gettext_noop("your .pt2 holds an unexpected file %(name)s")
                    % {"name": repr(info.filename[:100])},
                )
            if member.endswith("_config.json"):
                kind = member.split("/")[1]
                _check_payload_config(_load_json(archive, info.filename), kind)
                data = archive.read(info)
            elif member == "models/model.json":
                data = _check_model(_load_json(archive, info.filename))
            elif member.startswith("data/sample_inputs/"):
                data = b""
            else:
                data = archive.read(info)
            checked[info.filename] = data
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as rebuilt:
        for info in infos:  # in the upload's order
            rebuilt.writestr(info.filename, checked[info.filename])
    return out.getvalue()


# --- loading (in the model process) -------------------------------------------------------


def _training_mode_ops(graph: Any) -> list[str]:
    """Names of ops in an exported graph that only appear when exported in training mode."""
    import torch

    aten = torch.ops.aten
    found = []
    for node in graph.nodes:
        if node.op != "call_function":
            continue
        if node.target in (aten.dropout.default, aten.native_dropout.default):
            train = node.args[2] if len(node.args) > 2 else node.kwargs.get("train", False)
            if train:
                found.append("dropout")
        elif node.target == aten._native_batch_norm_legit_functional.default:
            found.append("batch_norm")
    return found


def load(data: bytes, device: str, threads: int, kind: TaskKind) -> tuple[Predict, int, str]:
    """Load bytes ``sanitize_pt2`` rebuilt; refuse a program exported in training mode."""
    import torch

    from grader.formats import as_array, torch_weights

    try:
        program = torch.export.load(io.BytesIO(data))
    except Exception as exc:
        raise GradingError(
            "invalid_model", f"this is not a valid .pt2 archive: {safe_message(exc)}"
        ) from exc
    training = _training_mode_ops(program.graph)
    if training:
        raise GradingError(
            "exported_in_training_mode",
            f"your .pt2 was exported in training mode ({', '.join(sorted(set(training)))} in"
            " training form); call model.eval() before torch.export.export",
        )
    if device != "cpu":
        from torch.export.passes import move_to_device_pass

        program = move_to_device_pass(program, device)
    params = sum(int(p.numel()) for p in program.parameters())
    weights = torch_weights([*program.parameters(), *program.buffers()])
    module = program.module()

    def predict(batch: np.ndarray) -> np.ndarray:
        return as_array(module(torch.from_numpy(batch).to(device)))

    return predict, params, weights
