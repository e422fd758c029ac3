"""The scaling part of a function's spec: which policy, and its parameters.

``scaling = { policy = "keep-alive", keep_alive_s = 30, max_instances = 8 }``
on a function (TOML or JSON alike). Validated when it is made, every problem
a :class:`SpecError` naming the field. The policies themselves (what they do
with these numbers) live in ``_deployment/_scaling.py``; this module is
apart from them so that ``_spec`` can hold a :class:`ScalingSpec` without
importing the deployment.
"""

from __future__ import annotations

import math
from typing import Final, Literal

import msgspec

from ._errors import SpecError

__all__ = (
    "DEFAULT_KEEP_ALIVE_S",
    "POLICIES",
    "PolicyName",
    "ScalingSpec",
    "scaling_spec_from_data",
)

PolicyName = Literal["fixed", "keep-alive", "hybrid-histogram"]
POLICIES: Final[tuple[PolicyName, ...]] = ("fixed", "keep-alive", "hybrid-histogram")
#: The keep-alive policy's default: LocalStack's ``LAMBDA_KEEPALIVE_MS`` (600000).
DEFAULT_KEEP_ALIVE_S: Final = 600.0
#: A histogram is a list of counts: beyond this many bins it is a mistake in the spec.
_MAX_BINS: Final = 100_000


def _require(ok: bool, field: str, value: object, why: str) -> None:
    if not ok:
        raise SpecError(f"scaling.{field}: {value!r}; {why}")


class ScalingSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A function's scaling policy and its parameters (``scaling = {...}`` in a spec).

    The ``histogram_*``, percentile, margin and representativeness fields are
    read by ``hybrid-histogram`` only; all times are seconds of the pool's clock.
    """

    policy: PolicyName = "fixed"
    #: Idle time after which an instance is stopped (default: 600 s for
    #: keep-alive; the histogram range for hybrid-histogram's fallback).
    keep_alive_s: float | None = None
    #: Instances kept running even when idle (0: scale to zero).
    min_instances: int = 0
    #: Upper bound on instances; a call beyond it queues. Required when scaling.
    max_instances: int | None = None
    #: Width of one idle-time bin (paper: 1 minute).
    histogram_bin_s: float = 60.0
    #: Idle times at or beyond this are out of bounds (paper: 4 hours).
    histogram_range_s: float = 14_400.0
    #: Percentiles of the idle-time histogram giving the windows (paper: 5th, 99th).
    head_percentile: float = 5.0
    tail_percentile: float = 99.0
    #: Pre-warm earlier and keep longer by this fraction (paper: 10 %).
    margin: float = 0.10
    #: Idle times needed before the histogram is trusted (ours; the paper gives no number).
    min_samples: int = 10
    #: Below this coefficient of variation of the bin counts the histogram is
    #: not representative (paper: 2).
    cv_threshold: float = 2.0
    #: Above this fraction of idle times out of bounds the histogram is not
    #: representative (ours; where the paper switches to ARIMA).
    max_out_of_bounds: float = 0.5

    def __post_init__(self) -> None:
        if self.policy == "fixed":
            for field, value, default in (
                ("keep_alive_s", self.keep_alive_s, None),
                ("min_instances", self.min_instances, 0),
                ("max_instances", self.max_instances, None),
            ):
                _require(
                    value == default,
                    field,
                    value,
                    "policy 'fixed' runs `instances` instances always and never stops "
                    "idle ones; use policy 'keep-alive' or 'hybrid-histogram' to scale",
                )
        else:
            _require(
                self.max_instances is not None,
                "max_instances",
                self.max_instances,
                f"policy {self.policy!r} needs an upper bound on instances "
                "(each one is a container on this machine)",
            )
        if self.keep_alive_s is not None:
            _require(
                math.isfinite(self.keep_alive_s) and self.keep_alive_s >= 0,
                "keep_alive_s",
                self.keep_alive_s,
                "must be a finite number of seconds >= 0",
            )
        _require(self.min_instances >= 0, "min_instances", self.min_instances, "must be >= 0")
        if self.max_instances is not None:
            _require(self.max_instances >= 1, "max_instances", self.max_instances, "must be >= 1")
            _require(
                self.max_instances >= self.min_instances,
                "max_instances",
                self.max_instances,
                f"must be >= min_instances ({self.min_instances})",
            )
        self._check_histogram()

    def _check_histogram(self) -> None:
        bin_s, range_s = self.histogram_bin_s, self.histogram_range_s
        _require(
            math.isfinite(bin_s) and bin_s > 0, "histogram_bin_s", bin_s, "must be seconds > 0"
        )
        _require(
            math.isfinite(range_s) and range_s >= bin_s,
            "histogram_range_s",
            range_s,
            f"must be finite seconds >= histogram_bin_s ({bin_s:g})",
        )
        bins = self.histogram_bins
        _require(
            bins <= _MAX_BINS,
            "histogram_range_s",
            range_s,
            f"makes {bins} bins of {bin_s:g} s; at most {_MAX_BINS}",
        )
        head, tail = self.head_percentile, self.tail_percentile
        _require(0 <= head < 100, "head_percentile", head, "must be in [0, 100)")
        _require(head < tail <= 100, "tail_percentile", tail, f"must be in ({head:g}, 100]")
        _require(0 <= self.margin < 1, "margin", self.margin, "must be a fraction in [0, 1)")
        _require(self.min_samples >= 1, "min_samples", self.min_samples, "must be >= 1")
        # All counts in one bin is the largest CV B bin counts can have: sqrt(B - 1).
        reachable = math.sqrt(bins - 1)
        _require(
            math.isfinite(self.cv_threshold) and 0 <= self.cv_threshold <= reachable,
            "cv_threshold",
            self.cv_threshold,
            f"must be in [0, {reachable:.3g}]: the CV of {bins} bin counts is at most "
            "sqrt(bins - 1) (bins = histogram_range_s / histogram_bin_s)",
        )
        _require(
            0 <= self.max_out_of_bounds <= 1,
            "max_out_of_bounds",
            self.max_out_of_bounds,
            "must be a fraction in [0, 1]",
        )

    @property
    def histogram_bins(self) -> int:
        # The tolerance keeps 14400 / 60 at 240 bins whatever the float rounding.
        return max(1, math.ceil(self.histogram_range_s / self.histogram_bin_s - 1e-9))

    @property
    def resolved_keep_alive_s(self) -> float:
        """``keep_alive_s``, or the policy's default when it is not given."""
        if self.keep_alive_s is not None:
            return self.keep_alive_s
        if self.policy == "hybrid-histogram":
            return self.histogram_range_s
        return DEFAULT_KEEP_ALIVE_S


def scaling_spec_from_data(data: object, *, where: str = "scaling") -> ScalingSpec:
    """A :class:`ScalingSpec` from decoded TOML/JSON, every problem a :class:`SpecError`.

    msgspec reports a ``__post_init__`` error as a ValidationError without the
    path; our messages name the field themselves, so only the prefix is added.
    """
    if isinstance(data, dict) and "policy" in data and data["policy"] not in POLICIES:
        known = ", ".join(POLICIES)
        raise SpecError(f"{where}.policy: {data['policy']!r} is not a policy (one of: {known})")
    try:
        return msgspec.convert(data, ScalingSpec)
    except msgspec.ValidationError as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, SpecError) else None
        raise SpecError(str(cause) if cause else f"{where}: {exc}") from exc
