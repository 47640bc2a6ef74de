"""Second-order Taylor arithmetic: exact first and second derivatives of rational formulas.

The seed-000 constants C1..C5 are rational functions of (beta1, beta2). Their monotonicity and
convexity thresholds are ratios of derivatives, so the derivatives must be accurate where they
are large (beta -> 1). Finite differences lose digits there; symbolic algebra is a heavy
dependency. Instead we evaluate the *same* formula on truncated Taylor series

    f(x0 + t) = a0 + a1 t + a2 t^2 + O(t^3),

propagating the coefficients through +, -, *, / and integer powers. The result carries
f(x0) = a0, f'(x0) = a1 and f''(x0) = 2 a2, exact up to floating-point rounding (no truncation
error), and vectorised because the coefficients are NumPy arrays.

Formulas evaluated this way must use only arithmetic operators (no ``np.asarray`` inside).
"""

from __future__ import annotations

import numpy as np


class Taylor2:
    """A truncated Taylor series a0 + a1 t + a2 t^2 with array coefficients."""

    # make ``ndarray <op> Taylor2`` defer to our reflected operators instead of broadcasting
    __array_ufunc__ = None

    __slots__ = ("a0", "a1", "a2")

    def __init__(self, a0, a1=0.0, a2=0.0):
        self.a0 = np.asarray(a0, dtype=float)
        self.a1 = np.asarray(a1, dtype=float)
        self.a2 = np.asarray(a2, dtype=float)

    @classmethod
    def variable(cls, x) -> Taylor2:
        """The independent variable at x: x + t."""
        x = np.asarray(x, dtype=float)
        return cls(x, np.ones_like(x), np.zeros_like(x))

    @property
    def value(self) -> np.ndarray:
        return self.a0

    @property
    def d1(self) -> np.ndarray:
        """First derivative at the expansion point."""
        return self.a1

    @property
    def d2(self) -> np.ndarray:
        """Second derivative at the expansion point."""
        return 2.0 * self.a2

    @staticmethod
    def _lift(other) -> Taylor2:
        return other if isinstance(other, Taylor2) else Taylor2(other)

    def __neg__(self) -> Taylor2:
        return Taylor2(-self.a0, -self.a1, -self.a2)

    def __add__(self, other) -> Taylor2:
        o = self._lift(other)
        return Taylor2(self.a0 + o.a0, self.a1 + o.a1, self.a2 + o.a2)

    __radd__ = __add__

    def __sub__(self, other) -> Taylor2:
        return self + (-self._lift(other))

    def __rsub__(self, other) -> Taylor2:
        return self._lift(other) - self

    def __mul__(self, other) -> Taylor2:
        o = self._lift(other)
        return Taylor2(
            self.a0 * o.a0,
            self.a0 * o.a1 + self.a1 * o.a0,
            self.a0 * o.a2 + self.a1 * o.a1 + self.a2 * o.a0,
        )

    __rmul__ = __mul__

    def __truediv__(self, other) -> Taylor2:
        # q = a / b  <=>  q b = a, solved order by order
        o = self._lift(other)
        q0 = self.a0 / o.a0
        q1 = (self.a1 - q0 * o.a1) / o.a0
        q2 = (self.a2 - q0 * o.a2 - q1 * o.a1) / o.a0
        return Taylor2(q0, q1, q2)

    def __rtruediv__(self, other) -> Taylor2:
        return self._lift(other) / self

    def __pow__(self, exponent: int) -> Taylor2:
        if not isinstance(exponent, int | np.integer) or exponent < 0:
            raise ValueError("Taylor2 supports non-negative integer powers only")
        result = Taylor2(np.ones_like(self.a0))
        for _ in range(int(exponent)):
            result = result * self
        return result

    def __repr__(self) -> str:
        return f"Taylor2(value={self.a0!r}, d1={self.a1!r}, d2={2.0 * self.a2!r})"
