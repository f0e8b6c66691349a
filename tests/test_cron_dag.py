from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitsync import cron, dag


@pytest.mark.parametrize(
    "text, cycle",
    [
        ("0 0 0 * * ? *", "day"),
        ("59 59 23 * * ? *", "day"),
        ("0 1/1 * * * ? *", "minute"),
        ("0 0/15 8-18 * * ? *", "minute"),
        ("0 5 * * * ?", "hour"),
        ("0 0 3 ? * SUN *", "week"),
        ("0 0 3 ? * MON-FRI *", "week"),
        ("0 0 6 1 * ? *", "month"),
        ("0 0 6 L * ? *", "month"),
        ("0 0 6 15W * ? *", "month"),
        ("0 0 6 ? * 6#3 *", "week"),
        ("0 0 6 ? * 6L 2030", "week"),
        ("0 0 0 1 1,4,7,10 ? *", "month"),
        ("0 0 12 * JAN-MAR ? *", "day"),
    ],
)
def test_valid_expressions(text: str, cycle: str) -> None:
    assert cron.validate(text, cycle) is None


@pytest.mark.parametrize(
    "text, reason",
    [
        ("0 0 0 * *", "expected 6 or 7 fields"),
        ("60 0 0 * * ? *", "seconds field: 60 is outside 0-59"),
        ("0 0 0 0 * ? *", "day-of-month field: 0 is outside 1-31"),
        ("0 0 0 * 13 ? *", "month field: 13 is outside 1-12"),
        ("0 0 0 ? * 0 *", "day-of-week field: 0 is outside 1-7"),
        ("0 0 0 ? * FOO *", "day-of-week field: 'FOO' is not a number"),
        ("0 0 0 * * * *", "exactly one of day-of-month and day-of-week must be '?'"),
        ("0 0 0 ? * ? *", "exactly one of day-of-month and day-of-week must be '?'"),
        ("? 0 0 * * ? *", "seconds field: '?' is only allowed"),
        ("0 */0 0 * * ? *", "step '0' must be a positive number"),
        ("0 5-1 0 * * ? *", "range '5-1' runs backwards"),
        ("0 1,,2 0 * * ? *", "empty item"),
    ],
)
def test_invalid_expressions_say_which_field(text: str, reason: str) -> None:
    message = cron.validate(text)
    assert message is not None and reason in message


@pytest.mark.parametrize(
    "text, cycle",
    [
        ("* * * * * ? *", "minute"),
        ("0 0/5 * * * ? *", "hour"),
        ("0 0 * * * ? *", "day"),
        ("0 0 0 * * ? *", "week"),
        ("0 0 0 * * ? *", "month"),
        ("0 0 0 ? * MON *", "day"),
    ],
)
def test_cycle_mismatch(text: str, cycle: str) -> None:
    message = cron.validate(text, cycle)
    assert message is not None and "does not match the cycle" in message


def test_fields_expand_to_values() -> None:
    parsed = cron.parse("0 0/20 9-11 * JAN,mar ? *")
    assert parsed.minutes.values == {0, 20, 40}
    assert parsed.hours.values == {9, 10, 11}
    assert parsed.month.values == {1, 3}


def test_cycles_are_found_and_printed_in_run_order() -> None:
    ups = {"b": ["a"], "c": ["b"], "a": ["c"], "e": ["d"], "d": ["e"], "f": []}
    assert dag.find_cycles("abcdef", ups) == [["a", "b", "c", "a"], ["d", "e", "d"]]
    assert dag.find_cycles("ab", {"a": ["a"], "b": ["zz"]}) == []


def test_topological_order_keeps_ties_in_order_and_rejects_cycles() -> None:
    assert dag.topological_order("dcba", {"d": ["a"], "c": ["a"]}) == ["b", "a", "d", "c"]
    with pytest.raises(ValueError, match="cycle among: a, b"):
        dag.topological_order("abc", {"a": ["b"], "b": ["a"]})


@given(st.integers(2, 300), st.integers(0, 2**32 - 1))
def test_random_dags_have_no_cycles_and_sort(n: int, seed: int) -> None:
    import random

    r = random.Random(seed)  # one drawn seed: st.randoms would draw every value it gives
    names = [f"t{i}" for i in range(n)]
    ups = {names[i]: r.sample(names[:i], min(i, 3)) for i in range(n)}
    assert dag.find_cycles(names, ups) == []
    order = dag.topological_order(reversed(names), ups)
    pos = {t: i for i, t in enumerate(order)}
    assert all(pos[u] < pos[t] for t, us in ups.items() for u in us)
    # an edge from the last task back to the first closes the chain t0 -> t1 -> ... -> t0
    ups.update({names[i]: [names[i - 1]] for i in range(1, n)})
    ups[names[0]] = [names[-1]]
    assert dag.find_cycles(names, ups) == [[*names, names[0]]]


def test_deep_chain_does_not_hit_recursion_limit() -> None:
    names = [f"t{i}" for i in range(5000)]
    ups = {names[i]: [names[i - 1]] for i in range(1, 5000)}
    ups[names[0]] = [names[-1]]
    (cycle,) = dag.find_cycles(names, ups)
    assert len(cycle) == 5001 and cycle[0] == cycle[-1] == "t0"
