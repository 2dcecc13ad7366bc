"""The lecture's tools: the predicates behind notebook 03's checked sentences (see `claims`)."""

from __future__ import annotations
