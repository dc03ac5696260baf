"""Argument checks shared by layers and builders.

Every error names the argument, the value received and what is allowed.
"""

import numbers


def check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(
            f"`{name}` must be a positive integer; received {name}={value!r}."
        )
    return int(value)


def check_non_negative_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(
            f"`{name}` must be a non-negative integer; received {name}={value!r}."
        )
    return int(value)


def check_rate(name, value):
    """A probability in [0, 1): drop rates."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 <= value < 1.0
    ):
        raise ValueError(
            f"`{name}` must be a number in [0, 1); received {name}={value!r}."
        )
    return float(value)


def check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(
            f"`{name}` must be one of {', '.join(repr(a) for a in allowed)}; "
            f"received {name}={value!r}."
        )
    return value
