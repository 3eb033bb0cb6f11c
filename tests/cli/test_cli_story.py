"""The KP story is data: one list of steps, of which a network plays those its
authorities can (``cli.story.story_for``); every call names a builder of ``Story``."""

from __future__ import annotations

import inspect
import re

import pytest

from kpledger.cli.demo import AUTHORITIES
from kpledger.cli.demo_artisanal import ARTISANAL_STORY
from kpledger.cli.story import KP_STORY, PARTIES, REQUIRED, Step, Story, final_parcel, story_for
from kpledger.ledger.errors import InvalidData


def test_the_four_authority_story_leaves_out_every_step_russia_takes_part_in() -> None:
    steps = story_for(REQUIRED)
    assert {s.chain for s in steps} == set(REQUIRED)
    assert all(not s.needs and s.rule is None for s in steps)
    assert len(steps) == 16
    assert final_parcel(steps) == "IN-CUT-2"
    # no call names a Russian parcel or certificate
    args = repr([c.args for s in steps for c in s.calls])
    assert "RU-" not in args
    assert "AE-MIX-1" not in args


def test_the_demo_plays_every_step_with_russia() -> None:
    steps = story_for(AUTHORITIES)
    assert steps == KP_STORY
    assert [s.rule for s in steps if s.rule] == ["9"]
    assert final_parcel(steps) == "IN-CUT-3"
    # extra authorities (a participant admitted later) change nothing
    assert story_for((*AUTHORITIES, "VE")) == KP_STORY


def test_a_network_without_a_required_authority_is_refused_by_name() -> None:
    with pytest.raises(InvalidData, match=r"\['AE'\]"):
        story_for(("BW", "EU", "IN", "RU"))


def test_every_call_names_a_builder_with_matching_arguments() -> None:
    for s in KP_STORY:
        for call in s.calls:
            builder = getattr(Story, call.builder)
            # the builder accepts the call's arguments (after self)
            inspect.signature(builder).bind(None, *call.args)
            assert call.args[0] == s.chain, (s.text, call)


def _registered(steps: tuple[Step, ...]) -> list[tuple[str, str, str, str]]:
    """(chain, party id, role, name) of every party the steps register."""
    return [
        (call.args[0], call.args[1], call.args[2], call.args[3])
        for s in steps
        for call in s.calls
        if call.builder == "party"
    ]


def test_the_story_registers_the_parties_of_its_table() -> None:
    assert {(c, role): pid for c, pid, role, _ in _registered(KP_STORY)} == PARTIES


def _spelled(pid: str, name: str) -> list[str]:
    """The words of ``name`` (three letters or more: shorter ones turn up in random
    characters by chance) that ``pid`` holds."""
    words = [w for w in re.findall(r"[A-Z0-9]+", name.upper()) if len(w) >= 3]
    assert words, name
    return [w for w in words if w in pid.upper()]


@pytest.mark.parametrize("steps", [KP_STORY, ARTISANAL_STORY], ids=["kp", "artisanal"])
def test_no_party_id_of_the_stories_carries_a_word_of_its_name(steps: tuple[Step, ...]) -> None:
    """Party ids are public and names are committed fields: an id has the form ``kpl
    party register`` draws, and holds no word of the name."""
    parties = _registered(steps)
    assert parties
    for chain, pid, _, name in parties:
        assert re.fullmatch(rf"{chain}-[A-Z2-7]{{8}}", pid), pid
        assert not _spelled(pid, name), (pid, name)
    # the check finds the names that ids once spelled
    assert _spelled("BW-DEBSWANA", "Debswana Diamond Company") == ["DEBSWANA"]
    assert _spelled("AE-DMCC1", "DMCC trader") == ["DMCC"]
