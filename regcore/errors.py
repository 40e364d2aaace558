"""The one exception regcore raises for bad input."""


class SpecError(ValueError):
    """An invalid penalty spec, coefficient, convention, selection or serialized form.

    Every message names the offending field (as a dotted path where the value sits inside a
    serialized spec, e.g. ``penalties[0].term.coef``) and the value that was rejected. It derives
    from :class:`ValueError` so ``except ValueError`` also catches it.
    """


class UnsupportedError(NotImplementedError):
    """A backend cannot do something optional the caller asked for: a device, dtype, native
    translation or optimizer it does not offer. The conformance suite turns it into a skip whose
    reason names the backend; it is not bad input (that is :class:`SpecError`)."""
