"""What a start of ``contdepth train`` does with the run folder it finds: the run folder's state machine.

Each state (:class:`~.runstate.FolderState`) has one way forward, and the same command, with or without
``--resume``, never gives two that contradict each other (the table is in docs/troubleshooting.md):

- no progress (no folder, an empty one, a start that saved no checkpoint): the run starts, again if need
  be, with a one-line note; ``--resume`` too starts it, and says so;
- a checkpoint: ``--resume`` continues it; the same command without it is refused, saying so;
- complete, without its fp16 weights: the outputs it lacks are written from its checkpoint;
- complete: nothing to do, said in one line (:class:`RunFinished`, exit code 0);
- trained epochs whose checkpoint is gone: refused, naming ``--overwrite``, the only way on.

``--overwrite`` replaces whatever is there; it is asked for only where there is progress to lose, and
a folder holding a run with other settings is refused (another ``--out``, or ``--overwrite``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..runs import checkpoint as ckpt
from ..runs.files import CHECKPOINT, METRICS, WEIGHTS, run_files
from ..runs.folder import RunFolderError
from ..runs.records import read_results
from ..runs.state import FolderState, folder_state
from .config import ResolvedConfig, differences
from .loading import saved_run_config


class RunFinished(RunFolderError):
    """The folder holds this run, finished: there is nothing to train (``contdepth train`` says so and exits 0)."""


@dataclass(frozen=True)
class Start:
    """How a start goes on: ``resume`` the checkpoint (to continue, or to write the outputs a finished run
    lacks), ``clear`` the run files found first (a start that saved nothing, or ``--overwrite``), and a
    ``note`` to print (one line, or None)."""

    resume: bool
    clear: bool
    note: str | None = None


def plan(out: str | Path, config: ResolvedConfig, *, resume: bool = False, overwrite: bool = False) -> Start:
    """How a run with ``config`` starts in ``out`` (flags ``--resume``, ``--overwrite``); see the module docstring.

    Raises :class:`RunFinished` for a finished run with the same settings, :class:`~.rundir.RunFolderError`
    (one line saying what to do) where the run cannot start, and :class:`~.checkpoint.CheckpointError` or
    ``ValueError`` (a damaged checkpoint or ``config.json``, named) where its files cannot be read.
    """
    out = Path(out)
    where = out.absolute()
    state = folder_state(out)
    if overwrite:
        return Start(resume=False, clear=True)
    if state in (FolderState.ABSENT, FolderState.EMPTY):
        note = f"note: --resume: nothing to resume in {where} yet; starting the run" if resume else None
        return Start(resume=False, clear=False, note=note)
    if state is FolderState.STARTED:
        found = ", ".join(run_files(out))
        what = f"a start that saved no checkpoint ({found})"
        if resume:
            return Start(False, True, f"note: --resume: {where} holds {what}; starting the run from the beginning")
        return Start(False, True, f"note: {where} holds {what}; starting the run again")
    if state is FolderState.LOST:
        raise RunFolderError(
            f"{where} holds {_trained(out)} but no {CHECKPOINT} to continue from; restore it, or pass "
            "--overwrite to start the run again"
        )
    _check_settings(out, config, resume=resume)
    if state is FolderState.DONE:
        raise RunFinished(f"{where} holds this run, finished ({_outcome(out)}): nothing to train; {_again()}")
    if state is FolderState.UNFINISHED:
        return Start(True, False, f"note: {where} holds this run, trained to the end; writing its {WEIGHTS} and plots")
    if resume:
        return Start(resume=True, clear=False)
    saved = ckpt.load(out / CHECKPOINT)  # a damaged checkpoint is named here, as --resume would name it
    at = f"epoch {saved['epoch']} batch {saved['batch']}" if saved["batch"] else f"the end of epoch {saved['epoch']}"
    verb = "finish" if saved["epoch"] >= config.epochs else "continue"  # its last results are to write
    raise RunFolderError(
        f"{where} holds this run, saved at {at} of {config.epochs}; pass --resume to {verb} it, or {_again()}"
    )


def _check_settings(out: Path, config: ResolvedConfig, *, resume: bool) -> None:
    """Refuse a run with other settings than those of the run in ``out`` (one line naming them)."""
    saved = saved_run_config(out)
    if saved is None:  # neither config.json nor a checkpoint: a finished run with its weights alone
        raise RunFolderError(f"{out.absolute()} holds a run whose settings are lost (no config.json); {_again()}")
    diffs = differences(saved, config.to_dict())
    if not diffs:
        return
    if resume:
        raise RunFolderError(
            f"--resume: {out} was started with other settings ({'; '.join(diffs)}); resume continues the same "
            "run: drop those options or choose another --out"
        )
    raise RunFolderError(
        f"{out.absolute()} holds another run ({'; '.join(diffs)}); choose another --out, or pass --overwrite "
        "to replace it"
    )


def _again() -> str:
    return "--overwrite trains it again (or choose another --out)"


def _outcome(out: Path) -> str:
    results = read_results(out) or {}
    done = results.get("epochs_done")
    epochs = f"{done} epoch{'s' * (done != 1)}" if isinstance(done, int) else "all epochs"
    error = results.get("final_test_error")
    return f"{epochs}, test error {error:.2f}%" if isinstance(error, (int, float)) else epochs


def _trained(out: Path) -> str:
    results = read_results(out) or {}
    epochs = results.get("epochs_done")
    if isinstance(epochs, int) and epochs > 0:
        return f"{epochs} trained epoch{'s' * (epochs != 1)}"
    return f"trained epochs ({', '.join(n for n in (METRICS, WEIGHTS) if (out / n).is_file())})"
