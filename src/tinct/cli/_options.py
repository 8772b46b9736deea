"""CLI flags generated from :class:`tinct.ColorizeOptions`, and the errors every sub-command shares.

:func:`add_option_arguments` adds one flag per options field (``mrf_weight`` ->
``--mrf-weight``; a switch such as ``temporal`` becomes a flag without a value),
with the range, the choices and the default taken from the field's
:class:`~tinct.engine.options.FieldSpec`; :func:`options_from_args` builds the
options back and turns an :class:`~tinct.engine.options.OptionError` into a
:class:`UsageError` naming the flag. :class:`Parser` prints argparse's own
errors on one line (``tinct colorize: error: argument --temperature: ...``).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from typing import Any, NoReturn

__all__ = [
    "Parser",
    "RuntimeFailure",
    "UsageError",
    "add_option_arguments",
    "add_output_depth_argument",
    "check_device",
    "check_folder_path",
    "check_input_file",
    "check_output_depth",
    "ensure_weights",
    "make_folder",
    "options_from_args",
]


class UsageError(Exception):
    """A mistake in the command line: printed on one line, exit status 2.

    Args:
        flag: The flag (or argument) at fault, e.g. ``"--hints"``; ``""`` for none.
        message: What is wrong.
    """

    def __init__(self, flag: str, message: str) -> None:
        self.flag, self.message = flag, message
        super().__init__(f"{flag}: {message}" if flag else message)


class RuntimeFailure(Exception):
    """A failure that is not the command line's fault: printed on one line, exit status 1."""


class Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (no usage block), exit status 2.

    Its help is plain text: reStructuredText markup in descriptions taken from
    docstrings (````code````, ``:func:`name```) is removed.
    """

    def format_help(self) -> str:
        """The help text without reStructuredText markup, choices filled in."""
        for action in self._actions:
            if action.help and _CHOICES in action.help:
                action.help = re.sub(rf"<{_CHOICES}(\w+)>", _choices_text, action.help)
        text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", super().format_help())
        return text.replace("``", "")

    def error(self, message: str) -> NoReturn:
        """Print ``PROG: error: MESSAGE (see PROG --help)`` and exit with status 2."""
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


_CHOICES = "choices:"


def check_input_file(path: str | Any, flag: str) -> None:
    """A usage error unless ``path`` is an existing regular file.

    Args:
        path: The file the command line names.
        flag: The flag (or argument) naming it, e.g. ``"IN"`` or ``"--hints"``.

    Raises:
        UsageError: Missing (a shell pattern that matched nothing said so), a broken
            link, a directory, or not a regular file (a FIFO, a device).
    """
    import os
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            raise UsageError(flag, f"{path} is a broken link (to {os.readlink(path)})") from None
        unmatched = " (no file matched the pattern)" if any(c in str(path) for c in "*?[") else ""
        raise UsageError(flag, f"no such file: {path}{unmatched}") from None
    except OSError as exc:
        raise UsageError(flag, f"cannot open {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise UsageError(flag, f"{path} is a directory, not a file")
    if not stat.S_ISREG(mode):
        raise UsageError(flag, f"{path} is not a regular file")


def _choices_text(match: re.Match[str]) -> str:
    from tinct.engine.options import ColorizeOptions

    allowed = ColorizeOptions.specs()[match.group(1)].allowed() or ()
    return ", ".join(allowed)


def _help(name: str, spec: Any, default: Any) -> str:
    parts = [spec.help]
    if callable(spec.choices):  # resolved when --help is shown: parsing imports no torch
        parts.append(f"one of <{_CHOICES}{name}>")
    allowed = None if callable(spec.choices) else spec.allowed()
    if allowed is not None:
        parts.append(f"one of {', '.join(allowed)}")
    elif spec.kind in (int, float) and spec.range_text():
        parts.append(spec.range_text())
    if spec.words:
        parts.append("or " + ", ".join(w for w in spec.words))
    shown = spec.default_text if default is None or spec.default_text != "the model's" else None
    if shown is None:
        shown = " ".join(f"{v:g}" for v in default) if isinstance(default, tuple) else default
    parts.append(f"default: {shown}")
    return "; ".join(parts)


def add_option_arguments(
    parser: argparse.ArgumentParser,
    *,
    exclude: Iterable[str] = (),
    title: str = "colorization options",
    options_class: Any = None,
) -> None:
    """Add one flag per :class:`~tinct.ColorizeOptions` field to ``parser``.

    Flags default to ``None`` (unset), so the options' own defaults, the model's
    and the library's apply; the help text says which.

    Args:
        parser: The sub-command's parser.
        exclude: Field names to leave out (e.g. ``model`` where ``--models`` exists).
        title: Heading of the argument group in ``--help``.
        options_class: The options dataclass (default :class:`~tinct.ColorizeOptions`).
    """
    import dataclasses

    from tinct.engine.options import ColorizeOptions

    cls = options_class or ColorizeOptions
    skip = set(exclude)
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    g = parser.add_argument_group(title)
    for name, spec in cls.specs().items():
        if name in skip:
            continue
        kwargs: dict[str, Any] = {"default": None, "dest": name}
        if spec.kind is bool:  # a switch: --temporal turns it on
            kwargs["action"] = "store_true"
        elif spec.kind == "pair":
            kwargs.update(nargs=2, metavar=spec.metavar or ("LO", "HI"))
        else:
            kwargs["metavar"] = spec.metavar or _metavar(name, spec)
        g.add_argument(
            "--" + name.replace("_", "-"), help=_help(name, spec, defaults[name]), **kwargs
        )


def add_output_depth_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--output-depth {auto,8,16}`` (:func:`tinct.engine.outputs.output_depth`)."""
    parser.add_argument(  # the choices are outputs.OUTPUT_DEPTHS, not imported at start-up
        "--output-depth", choices=("auto", "8", "16"), default="auto",
        help="bits a channel of the images written: auto keeps an integer input of more "
        "than 8 bits (a uint16 scan) at 16 bits in a PNG or TIFF and writes 8 otherwise "
        "(8-bit and float inputs, .jpg/.webp/.bmp/.gif; a stack's TIFF stays uint8 or "
        "float32); 8 or 16 force it (16: .png or .tif outputs only); default: auto",
    )  # fmt: skip


def check_output_depth(depth: str, outputs: Iterable[Any]) -> None:
    """A usage error naming ``--output-depth`` when an output's format cannot hold ``depth``.

    Raises:
        UsageError: ``depth`` is ``"16"`` and an output is a JPEG, WebP, BMP, GIF or video.
    """
    from tinct.engine.outputs import OutputDepthError
    from tinct.engine.outputs import check_output_depth as check

    for path in outputs:
        try:
            check(depth, path)
        except OutputDepthError as exc:
            raise UsageError("--output-depth", str(exc)) from None


def _metavar(name: str, spec: Any) -> str:
    if spec.kind is int:
        return "N"
    if spec.kind is float:
        return "X"
    return "NAME" if name in ("model", "decoder") else name.upper().replace("_", "-")


def options_from_args(args: argparse.Namespace, **overrides: Any) -> Any:
    """The :class:`~tinct.ColorizeOptions` of parsed arguments.

    Args:
        args: The parsed namespace (fields not given are ``None``).
        **overrides: Field values that win over the arguments.

    Returns:
        The options.

    Raises:
        UsageError: A value out of range or of the wrong type, naming its flag.
    """
    from tinct.engine.options import ColorizeOptions
    from tinct.engine.optionspec import OptionError

    names = ColorizeOptions.field_names()
    given = {k: v for k, v in vars(args).items() if k in names}
    said = str(given.get("normalize") or "range").strip().lower()
    if given.get("intensity_range") is not None and said not in ("range", "none"):
        raise UsageError(  # the range won, silently
            "--normalize", f"{given['normalize']} conflicts with --intensity-range, which maps "
            "its two values to black and white; give one of them (or --normalize range)",
        )  # fmt: skip
    try:
        return ColorizeOptions.from_mapping({**given, **overrides})
    except OptionError as exc:
        raise UsageError(ColorizeOptions.name_in(exc.field, "cli"), exc.detail_for("cli")) from None


def check_device(device: Any, flag: str = "--device") -> None:
    """Refuse, once and up front, an explicit device this machine does not have.

    ``auto`` and ``cpu`` always pass; ``cuda``, ``cuda:N`` or ``mps`` without that
    GPU is one line naming the flag (before any file is read, so that a batch
    does not fail every file one by one with the same message).

    Args:
        device: The device name (already checked to be a known name).
        flag: The flag to name.

    Raises:
        RuntimeFailure: The device is not available here (exit status 1).
    """
    name = str(device).strip().lower()
    if name in ("auto", "cpu"):
        return
    from tinct.engine.runtime import DeviceUnavailableError, select_device

    try:
        select_device(name)
    except DeviceUnavailableError as exc:
        raise RuntimeFailure(f"{flag}: {exc}") from None


def check_model(
    options: Any,
    *,
    hinted: bool | None = None,
    model_flag: str = "--model",
    hints_flag: str | None = "--hints",
) -> Any:
    """Check the model, its weights and the decoder before any work starts.

    Args:
        options: The :class:`~tinct.ColorizeOptions`.
        hinted: Whether hints are given (``None`` = not known yet; skips the
            "needs hints" check).
        model_flag: How the command line names the model (``--model``, ``--models``).
        hints_flag: The flag that gives hints; ``None`` where the sub-command
            takes none (a hints-only model is then an error naming ``model_flag``).

    Returns:
        The model's registry record.

    Raises:
        UsageError: Unknown model, missing weights file, a model without trained
            weights, a decoder that does not apply, or a hints-only model
            without hints.
    """
    from tinct.models import catalog
    from tinct.models.registry import UnknownModelError

    try:
        record = catalog.record_for(options.model)
    except UnknownModelError as exc:
        raise UsageError(model_flag, str(exc)) from None
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(model_flag, str(exc)) from None
    from pathlib import Path

    if not Path(options.model).is_file():  # a registry name: are its weights here?
        _, ok, reason = catalog.availability(record)
        if not ok:
            raise UsageError(model_flag, reason)
    try:
        catalog.check_decoder(record.config, options.decoder, record.name)
    except ValueError as exc:
        raise UsageError("--decoder", str(exc)) from None
    if hinted is False and record.config.hints_required:
        if hints_flag is None:
            raise UsageError(
                model_flag, f"model {record.name} colorizes from colour hints only and this "
                "command takes no hints; use tinct colorize --hints FILE, or another model",
            )  # fmt: skip
        raise UsageError(
            hints_flag, f"model {record.name} colorizes from colour hints only; give --hints FILE"
        )
    return record


def check_folder_path(folder: Any, flag: str) -> None:
    """A usage error when ``folder``, or the first existing folder on the way to it, is a file.

    Args:
        folder: The folder (it need not exist yet).
        flag: The flag (or argument) naming it.

    Raises:
        UsageError: Naming ``flag`` and the file in the way.
    """
    from pathlib import Path

    path = Path(folder)
    for part in (path, *path.parents):
        if part.exists() or part.is_symlink():
            if part.is_dir():
                return
            if part == path:
                raise UsageError(flag, f"{path} is a file, not a folder")
            raise UsageError(flag, f"cannot create {path}: {part} is a file, not a folder")


def make_folder(folder: Any, flag: str) -> None:
    """Create an output folder (and its parents), or say plainly why it cannot be.

    Args:
        folder: The folder.
        flag: The flag (or argument) naming it, e.g. ``"--out"``.

    Raises:
        UsageError: The folder, or a folder on the way to it, is a file.
        RuntimeFailure: The folder cannot be created or written (permissions, a
            read-only file system).
    """
    import os
    from pathlib import Path

    path = Path(folder)
    check_folder_path(path, flag)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RuntimeFailure(f"cannot create {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK):
        raise RuntimeFailure(f"cannot write into {path}: permission denied")


def ensure_weights(record: Any, *, progress: bool = True) -> None:
    """Download a registry model's weights once, before any work starts (nothing if cached).

    Args:
        record: The model's registry record (from :func:`check_model`).
        progress: Show the download's progress bar.

    Raises:
        RuntimeFailure: The download failed (offline): one line naming the
            model, the URL and where to put the file by hand.
    """
    from tinct.models.loading import weights_status

    if record.weights is None or weights_status(record) != "downloadable":
        return
    from tinct.models import weights

    try:
        weights.fetch(record.weights, progress=progress)
    except (weights.WeightsUnavailableError, ValueError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RuntimeFailure(f"cannot load model {record.name}: {detail}") from None


def note_inactive(prog: str, args: argparse.Namespace, record: Any, *, hinted: bool) -> None:
    """Print one note per knob given on the command line that cannot act in this mode."""
    from tinct.models import catalog

    decoder = getattr(args, "decoder", None)
    fusion = catalog.fuses_hints(record)
    off = catalog.inactive_knobs(record.config, decoder=decoder, hinted=hinted, fusion=fusion)
    for knob, why in off.items():
        if getattr(args, knob, None) is not None and knob != "decoder":
            flag = "--" + knob.replace("_", "-")
            print(f"{prog}: note: {flag} has no effect here: {why}", file=sys.stderr)
