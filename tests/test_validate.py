"""The shared argument checks: the example in a message lies inside the limits it states."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, strategies as st

from lmfeed._validate import as_int


@given(minimum=st.integers(-10**6, 10**6), span=st.integers(0, 10**6),
       value=st.one_of(st.floats(allow_nan=True), st.text(max_size=8), st.booleans(), st.none()))
def test_the_suggested_value_is_within_the_limits(minimum, span, value):
    maximum = minimum + span
    with pytest.raises(TypeError) as error:
        as_int("vocab_size", value, minimum=minimum, maximum=maximum)
    example = int(re.search(r"e\.g\. vocab_size=(-?\d+)\.", str(error.value)).group(1))
    assert minimum <= example <= maximum, str(error.value)


def test_a_whole_number_in_the_wrong_type_is_suggested_as_an_int():
    with pytest.raises(TypeError, match=r"e\.g\. vocab_size=300\."):
        as_int("vocab_size", "300", minimum=257)
    with pytest.raises(TypeError, match=r"e\.g\. max_length=256\."):
        as_int("max_length", 256.0)
    with pytest.raises(TypeError, match=r"e\.g\. vocab_size=257\."):
        as_int("vocab_size", "many", minimum=257)
