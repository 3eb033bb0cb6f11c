"""The KP story is data: one list of steps, of which a network plays those its
authorities can (``cli.story.story_for``); every call names a builder of ``Story``."""

from __future__ import annotations

import inspect

import pytest

from kpledger.cli.demo import AUTHORITIES
from kpledger.cli.story import KP_STORY, REQUIRED, Story, final_parcel, story_for
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
