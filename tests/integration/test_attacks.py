"""The three attacks of issue 18 in the simulator (tests/simulation/attacks.py), at N = 10 (N = 100: its main).

With authentication off each still works, which is what the README warns of; with it on, neither
an outsider (no key) nor an insider (a key of their own, scoped elsewhere and capped) blinds the
sweeper, keeps a dead runner alive, or gets a live one terminated.
"""

from __future__ import annotations

import pytest

from tests.simulation.attacks import ATTACKS, INSIDER_CAP, AttackSimulation

SIZE = 10


def test_with_authentication_off_101_ghosts_are_stored_but_no_longer_blind_the_sweeper() -> None:
    # The guard holds only when nobody is heard (docs/guarantees.md): the live fleet beating on proves the path,
    # so the silent ghosts are flagged like any removed runner, and the real deaths with them.
    outcome = AttackSimulation("blind", authenticated=False, size=SIZE).run()
    assert (outcome.attacker_records, outcome.deaths_flagged, outcome.deaths) == (SIZE + 1, 2, 2)


def test_with_authentication_off_a_dead_runner_is_kept_alive() -> None:
    outcome = AttackSimulation("keep-alive", authenticated=False, size=SIZE).run()
    assert (outcome.deaths_flagged, outcome.deaths, outcome.attacker_answered) == (0, 1, 5)


def test_with_authentication_off_moved_live_runners_are_terminated() -> None:
    outcome = AttackSimulation("move", authenticated=False, size=SIZE).run()
    assert outcome.live_told_to_terminate == SIZE // 10


def test_with_authentication_on_an_outsider_s_ghosts_are_refused_and_the_sweeper_sees_the_deaths() -> None:
    # An outsider's every request is refused before the store; the insider cases below go further.
    outcome = AttackSimulation("blind", authenticated=True, attacker="outsider", size=SIZE).run()
    assert outcome.no_effect, outcome
    assert outcome.attacker_records == 0
    assert outcome.attacker_answered == 0
    assert set(outcome.attacker_refused) == {"MissingAuthenticationTokenException"}


@pytest.mark.parametrize("attack", ATTACKS)
def test_with_authentication_on_an_insider_s_own_key_cannot_reach_other_runners(attack: str) -> None:
    outcome = AttackSimulation(attack, authenticated=True, attacker="insider", size=SIZE).run()
    assert outcome.no_effect, outcome
    if attack == "blind":  # its own worker group, up to its cap: too few to hold the guard
        assert (outcome.attacker_records, outcome.attacker_answered) == (INSIDER_CAP, INSIDER_CAP)
        assert outcome.attacker_refused == {"LimitExceededException": SIZE + 1 - INSIDER_CAP}
    else:
        assert outcome.attacker_answered == 0
        assert set(outcome.attacker_refused) == {"AccessDeniedException"}
