"""Every stored history replays against the current workflow code.

A change to ``workflows/`` that would make a running order take a different path on replay fails here,
before it can strand orders in production. Behaviour changes go behind ``workflow.patched()``; new
histories are recorded with ``make record-histories``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from infra.temporal import DATA_CONVERTER
from worker import WORKFLOWS

HISTORIES = sorted((Path(__file__).resolve().parent / "histories").glob("*.json"))


def test_histories_are_stored() -> None:
    assert HISTORIES, "no stored histories: run `make record-histories`"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(f"order:{path.stem}", path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name} no longer replays: {result.replay_failure}"


@pytest.mark.parametrize("name", ["delivered", "v2_delivered", "short_pick_replanned"])
async def test_replay_catches_a_workflow_that_changed_its_mind(name: str) -> None:
    """Histories of both lifecycle versions: a changed command sequence is caught, whichever path ran."""
    from tests.replay.broken_workflow import ReorderedOrderWorkflow

    path = next(p for p in HISTORIES if p.stem == name)
    history = WorkflowHistory.from_json(f"order:{name}", path.read_text())
    replayer = Replayer(workflows=[ReorderedOrderWorkflow], data_converter=DATA_CONVERTER)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()
