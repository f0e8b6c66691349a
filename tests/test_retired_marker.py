"""The retired copy's marker: the user's text, when and the successor come back exactly."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from gitsync.codec import marker
from tests.test_text_roundtrip import texts

names = (
    st.text(
        st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"),
        min_size=1,
        max_size=40,
    )
    .map(str.strip)
    .filter(bool)
)
moments = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2999, 1, 1), timezones=st.just(dt.UTC)
).map(lambda t: t.replace(microsecond=0))


@given(text=texts, when=moments, successor=st.one_of(st.just(""), names), held=st.booleans())
def test_retired_marker_round_trip(
    text: str, when: dt.datetime, successor: str, held: bool
) -> None:
    description = marker.retired_description(text, when, successor, held)
    assert marker.retirement(description) == marker.Retired(text, when, successor, held)
    assert not marker.split_marker(description)[1]  # a retired copy is no managed workflow


@given(text=texts)
def test_other_descriptions_are_not_retired(text: str) -> None:
    assert marker.retirement(marker.with_marker(text)) is None
    assert marker.retirement(text + "[managed by gitsync; retired soon]") is None


@given(name=names, flow_id=st.integers(1, 10**12))
def test_retired_names_fit_the_service(name: str, flow_id: int) -> None:
    retired = marker.retired_name(name * 10, flow_id)
    assert len(retired) <= marker.NAME_LIMIT and retired.endswith(f"__retired_{flow_id}")
